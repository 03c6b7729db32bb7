"""The training side of ``--projection auto``: the features the rule measures, before the projector exists.

The rule and its measurement are :mod:`edgekd.distill.projection_choice` (named by the projection
registry); here the student (train mode, as in training) and the frozen teacher see the calibration
batches, inside :func:`edgekd.train.probe.unchanged`, so the choice changes nothing else in the run.
"""

from __future__ import annotations

import torch

from ..distill import Distiller
from ..distill.registry import get_projection
from .probe import unchanged
from .step import mixed_precision


@torch.no_grad()
def measure_projection_choice(student, teacher_features, batches: list, dc, amp_dtype, device) -> dict:
    """The registry's chooser for ``dc.projection`` (``dc``: the ``[distill]`` section) on ``Z_s`` and ``Z_t`` of ``batches`` (x, y, xt, keys)."""
    zs, zt = [], []
    with unchanged(student, device=device), mixed_precision(amp_dtype):
        for x, _, xt, _ in batches:
            s = student(x, return_features=True)[1].float()
            zs.append(s)
            zt.append(Distiller.align(s, teacher_features.compute(xt)).float())
    return get_projection(dc.projection).choose(zs, zt, dc.auto_projection_cka)


def broadcast_choice(chosen: str, dist, device) -> str:
    """Rank 0's choice on every rank (floating-point ties must not give two ranks two projectors)."""
    if not dist.enabled:
        return chosen
    import torch.distributed as tdist

    names = ["inverted", "traditional"]
    flag = torch.tensor([names.index(chosen)], device=device if device.type == "cuda" else "cpu")
    tdist.broadcast(flag, src=0)
    return names[int(flag.item())]
