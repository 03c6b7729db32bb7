"""Teacher-free spectral regulariser (paper §3.5, eq. 6).

On student features reshaped to ``Z`` (rows = batch x positions, columns =
channels), penalise the energy outside the top-``r`` right singular directions:
``||Z - Z V_r V_r^T||_F^2 / rows = sum_{i>r} sigma_i^2 / rows``.

With ``V_r`` computed without grad the gradient of that expression,
``2 Z (I - V_r V_r^T) / rows``, *is* the gradient of the tail energy, so the
fast path never differentiates an SVD: it keeps ``V_r`` from the previous step
and refreshes it with subspace iterations ``V <- qr(Z^T (Z V))`` (two skinny
matmuls each; no C x C Gram).  Always fp32: no half-precision SVD.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def _as_matrix(z: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B*H*W, C) in fp32; (N, C) passes through."""
    z = z.float()
    if z.dim() == 4:
        z = z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])
    elif z.dim() == 3:  # (B, N, C) tokens
        z = z.reshape(-1, z.shape[-1])
    return z


def _tail_energy(Z: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    # ||Z||^2 - ||Z V||^2 == ||Z - Z V V^T||^2 for orthonormal V, with one skinny matmul.
    ZV = Z @ V
    return (Z.pow(2).sum() - ZV.pow(2).sum()).clamp_min(0) / Z.shape[0]


def spectral_loss_exact(z: torch.Tensor, r: int) -> torch.Tensor:
    """Reference: ``sum_{i>r} sigma_i(Z)^2 / rows`` through a differentiable SVD (for tests)."""
    Z = _as_matrix(z)
    s = torch.linalg.svdvals(Z)
    return s[r:].pow(2).sum() / Z.shape[0]


def top_right_singular_vectors(Z: torch.Tensor, r: int) -> torch.Tensor:
    """Exact top-``r`` right singular vectors of ``Z`` (C x r), via ``eigh`` of the Gram matrix."""
    with torch.no_grad():
        _, vecs = torch.linalg.eigh(Z.t() @ Z)
        return vecs[:, -r:].flip(1).contiguous()


def spectral_loss(z: torch.Tensor, r: int) -> torch.Tensor:
    """Mean-square energy of ``z`` outside its top-``r`` singular directions (exact subspace, no state)."""
    with torch.autocast(device_type=z.device.type, enabled=False):
        Z = _as_matrix(z)
        if r >= min(Z.shape):
            return Z.sum() * 0.0
        return _tail_energy(Z, top_right_singular_vectors(Z, r))


class SpectralRegulariser(nn.Module):
    """Warm-started fast path of :func:`spectral_loss`: ``iters`` subspace iterations per call."""

    def __init__(self, r: int, iters: int = 2):
        super().__init__()
        self.r, self.iters = int(r), int(iters)
        self.register_buffer("V", torch.empty(0), persistent=True)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=z.device.type, enabled=False):
            Z = _as_matrix(z)
            if self.r >= min(Z.shape):
                return Z.sum() * 0.0
            with torch.no_grad():
                Zd = Z.detach()
                if self.V.shape != (Z.shape[1], self.r) or self.V.device != Z.device:
                    self.V = top_right_singular_vectors(Zd, self.r)
                else:
                    V = self.V
                    for _ in range(self.iters):
                        V = torch.linalg.qr(Zd.t() @ (Zd @ V)).Q
                    self.V = V
            return _tail_energy(Z, self.V)
