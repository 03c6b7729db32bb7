"""Distances against hand-computed values; projector directions; spectral fast path vs exact SVD."""

import math

import pytest
import torch

from edgekd.distill import (
    Distiller, Projector, SpectralRegulariser, at_loss, ensemble_loss, fitnet_loss, pkt_loss, spectral_loss,
    spectral_loss_exact,
)
from edgekd.distill.registry import list_distances
from edgekd.distill.spectral import orthonormalise


def test_fitnet_hand_value():
    s = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 2, 2)
    t = torch.tensor([0.0, 2.0, 5.0, 4.0]).view(1, 1, 2, 2)
    assert fitnet_loss(s, t).item() == pytest.approx((1 + 0 + 4 + 0) / 4)


def test_at_hand_value():
    # one channel, 2x1 maps: a(x) = normalize(x^2)
    s = torch.tensor([1.0, 0.0]).view(1, 1, 2, 1)  # x^2 = [1, 0] -> a = [1, 0]
    t = torch.tensor([1.0, 1.0]).view(1, 1, 2, 1)  # x^2 = [1, 1] -> a = [.7071, .7071]
    r = 1 / math.sqrt(2)
    expect = ((1 - r) ** 2 + r**2) / 2
    assert at_loss(s, t).item() == pytest.approx(expect, rel=1e-5)


def test_at_channel_mean_and_resize():
    s = torch.randn(2, 3, 4, 4)
    t = torch.randn(2, 7, 2, 2)  # other channels and a smaller grid: s is resized down
    assert at_loss(s, t).item() >= 0
    assert at_loss(s, s).item() == pytest.approx(0.0, abs=1e-12)


def test_pkt_hand_value():
    # Two samples, pooled features orthogonal for the student, identical for the teacher.
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).view(2, 2, 1, 1)
    t = torch.tensor([[1.0, 0.0], [1.0, 0.0]]).view(2, 2, 1, 1)
    # student kernel: cos = I -> (K+1)/2 = [[1, .5], [.5, 1]] -> rows / 1.5 ; teacher: all ones -> rows / 2
    S = torch.tensor([[2 / 3, 1 / 3], [1 / 3, 2 / 3]])
    T = torch.full((2, 2), 0.5)
    eps = 1e-7
    expect = (T * torch.log((T + eps) / (S + eps))).mean().item()
    assert pkt_loss(s, t).item() == pytest.approx(expect, rel=1e-5)


def test_ensemble_cosine_hand_value():
    s = torch.tensor([[1.0, 0.0]]).view(1, 2, 1, 1)
    t = torch.tensor([[1.0, 1.0]]).view(1, 2, 1, 1)
    assert ensemble_loss(s, t).item() == pytest.approx(1 - 1 / math.sqrt(2), rel=1e-5)


def test_projector_is_linear_without_bias():
    p = Projector(5, 3)
    assert p.bias is None and p.matrix.shape == (3, 5)
    x = torch.randn(2, 5, 4, 4)
    assert torch.allclose(p(2 * x), 2 * p(x), atol=1e-6)
    assert p.singular_values().shape == (3,)


@pytest.mark.parametrize("method", list_distances())
def test_projection_directions(method):
    cs, ct = 8, 12
    inv = Distiller(method, "inverted", cs, ct)
    trad = Distiller(method, "traditional", cs, ct)
    m_inv, m_trad = inv.projector.matrix, trad.projector.matrix
    assert m_inv.shape == (cs, ct)  # teacher -> student
    assert m_trad.shape == (ct, cs)  # student -> teacher
    zs, zt = torch.randn(2, cs, 4, 4), torch.randn(2, ct, 2, 2)  # teacher grid resized to the student's
    assert torch.isfinite(inv(zs, zt)["distill"]) and torch.isfinite(trad(zs, zt)["distill"])


def test_ensemble_relu_only_traditional():
    assert Distiller("ensemble", "traditional", 4, 6).projector.relu
    assert not Distiller("ensemble", "inverted", 4, 6).projector.relu
    assert len(Distiller("ensemble", "inverted", 4, 6).projector.projectors) == 3


def _features_with_gap(rows=256, c=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    U, _ = torch.linalg.qr(torch.randn(rows, c, generator=g))
    V, _ = torch.linalg.qr(torch.randn(c, c, generator=g))
    s = 10.0 / torch.arange(1, c + 1).float()
    return (U * s) @ V.t()


@pytest.mark.parametrize("r", [1, 2, 8])
def test_spectral_equals_tail_energy(r):
    z = torch.randn(3, 16, 4, 5, requires_grad=True)
    a, b = spectral_loss_exact(z, r), spectral_loss(z, r)
    assert b.item() == pytest.approx(a.item(), rel=1e-4)
    ga, = torch.autograd.grad(a, z)
    gb, = torch.autograd.grad(b, z)
    assert torch.allclose(ga, gb, rtol=1e-3, atol=1e-5)


def test_spectral_fast_path_matches_exact_svd():
    """Warm-started subspace iteration vs exact SVD while features drift: value rel err <= 1e-4, grad <= 1e-3."""
    reg = SpectralRegulariser(2, iters=2)
    z = _features_with_gap()
    g = torch.Generator().manual_seed(1)
    for step in range(12):
        z = z + 1e-3 * torch.randn(z.shape, generator=g)
        x1, x2 = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
        a, b = spectral_loss_exact(x1, 2), reg(x2)
        a.backward()
        b.backward()
        if step >= 2:  # after warm-up
            assert abs(a.item() - b.item()) / a.item() <= 1e-4
            assert ((x1.grad - x2.grad).norm() / x1.grad.norm()).item() <= 1e-3


def test_spectral_elements_reduction_and_r_too_large():
    z = torch.randn(2, 8, 3, 3)
    assert SpectralRegulariser(2, reduction="elements")(z).item() * 8 == pytest.approx(spectral_loss(z, 2).item(), rel=1e-4)
    assert spectral_loss(z, 100).item() == 0.0


def test_orthonormalise():
    q = orthonormalise(torch.randn(50, 6))
    assert torch.allclose(q.t() @ q, torch.eye(6), atol=1e-5)
