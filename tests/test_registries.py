"""Tests over the registries of distances, projections and data formats: a new entry is covered by registering it."""

import subprocess
import sys

import pytest
import torch

from edgekd.distill import Distiller
from edgekd.distill.registry import get_distance, get_projection, list_distances, list_projections
from edgekd.errors import EdgekdError


@pytest.mark.parametrize("projection", list_projections())
@pytest.mark.parametrize("method", list_distances())
def test_every_distance_gives_a_finite_scalar_with_a_gradient(method, projection):
    torch.manual_seed(0)
    dist = Distiller(method, projection, student_channels=5, teacher_channels=7)
    zs = torch.randn(3, 5, 4, 4, requires_grad=True)
    zt = torch.randn(3, 7, 2, 2)  # another grid: resized to the student's
    loss = dist(zs, zt)["distill"]
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert zs.grad is not None and torch.isfinite(zs.grad).all() and zs.grad.abs().sum() > 0
    grads = [p.grad for p in dist.projector.parameters()]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    cin, cout = get_projection(projection).channels(5, 7)
    assert dist.projector.matrix.shape == (cout, cin)


def test_unknown_distance_and_projection_name_the_valid_ones():
    with pytest.raises(EdgekdError, match=r"unknown method 'kd'; use one of: fitnet, at, pkt, ensemble$"):
        get_distance("kd")
    with pytest.raises(EdgekdError, match=r"unknown projection 'sideways'; use inverted or traditional$"):
        Distiller("fitnet", "sideways", 4, 6)


def test_listing_names_imports_no_torch():
    code = ("import sys, edgekd.cli, edgekd.config, edgekd.distill.registry; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
