"""The parts of the training loop (edgekd.train.build/step/compile/grid) on their own, without a run."""

import pytest
import torch

from edgekd.errors import EdgekdError


def test_grid_options_are_checked_with_one_line_errors():
    from edgekd.train.grid import grid_cells, parse_grid

    g = parse_grid("none, random:resnet18", (), "fitnet,at", "inverted", "0,2", 2)
    assert (g.teachers, g.methods, g.projections, g.ranks, g.seeds) == (["none", "random:resnet18"], ["fitnet", "at"], ["inverted"], [0, 2], 2)
    ids = [c["id"] for c in grid_cells(g.teachers, g.methods, g.projections, g.ranks)]
    assert ids == ["none", "none-r2", "random-resnet18-fitnet-inverted", "random-resnet18-fitnet-inverted-r2",
                   "random-resnet18-at-inverted", "random-resnet18-at-inverted-r2"]
    assert parse_grid("resnet18", ("w.pth",), "fitnet", "inverted", "0", 1).weights == {"resnet18": "w.pth"}
    for args, msg in [(("none", (), "nope", "inverted", "0", 1), "unknown method 'nope' in --methods; use fitnet"),
                      (("none", (), "fitnet", "nope", "0", 1), "unknown projection 'nope'"),
                      (("none", (), "fitnet", "inverted", "a", 1), "must be a comma list of integers"),
                      (("a,b", ("w.pth",), "fitnet", "inverted", "0", 1), "must look like NAME=FILE when 2 named teachers")]:
        with pytest.raises(EdgekdError, match=msg):
            parse_grid(*args)


def _parts():
    from edgekd.train.step import StepParts, TeacherFeatures

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 1)

        def forward(self, x, y, zt=None):
            loss = ((self.lin(x) - y) ** 2).mean()
            return loss, {"task": loss}

    model = Tiny()
    return StepParts(model, torch.optim.SGD(model.parameters(), lr=0.1), TeacherFeatures(None, torch.device("cpu"), torch.float32), None)


def test_train_step_steps_the_optimiser_and_graph_mode_needs_a_gpu():
    from edgekd.train.compile import compiled_step
    from edgekd.train.step import train_step

    parts = _parts()
    before = parts.model.lin.weight.detach().clone()
    total, losses = train_step(parts, torch.ones(4, 3), torch.zeros(4, 1))
    assert not total.requires_grad and set(losses) == {"task"}
    assert not torch.equal(before, parts.model.lin.weight)
    with pytest.raises(EdgekdError, match="needs a GPU"):
        compiled_step(parts, "graph", torch.device("cpu"), distributed=False)
