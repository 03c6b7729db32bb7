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


def orthonormalise(A: torch.Tensor) -> torch.Tensor:
    """Orthonormal basis of the columns of ``A`` (C x r) by classical Gram-Schmidt applied twice.

    Only matmuls and elementwise ops: no solver call, no host sync, so it is cheap for the small
    ``r`` used here and can be captured in a CUDA graph (``torch.linalg.qr`` may not be).
    """
    cols = []
    for i in range(A.shape[1]):
        w = A[:, i : i + 1]
        for _ in range(2):  # "twice is enough" (Giraud et al. 2005)
            if cols:
                Q = torch.cat(cols, 1)
                w = w - Q @ (Q.t() @ w)
        cols.append(w / w.norm().clamp_min(1e-30))
    return torch.cat(cols, 1)


def spectral_loss(z: torch.Tensor, r: int) -> torch.Tensor:
    """Mean-square energy of ``z`` outside its top-``r`` singular directions (exact subspace, no state)."""
    with torch.autocast(device_type=z.device.type, enabled=False):
        Z = _as_matrix(z)
        if r >= min(Z.shape):
            return Z.sum() * 0.0
        return _tail_energy(Z, top_right_singular_vectors(Z, r))


class SpectralRegulariser(nn.Module):
    """Warm-started fast path of :func:`spectral_loss`: ``iters`` subspace iterations per call.

    ``reduction="rows"`` gives exactly :func:`spectral_loss`; ``"elements"`` also divides by the
    channel count, a mean square per element like FitNets' MSE, which is what ``edgekd distill``
    uses so that a weight of 1 does not let the regulariser swamp the task loss.
    """

    def __init__(self, r: int, iters: int = 2, reduction: str = "rows"):
        super().__init__()
        if reduction not in ("rows", "elements"):
            raise ValueError(f"reduction must be 'rows' or 'elements', got {reduction!r}")
        self.r, self.iters, self.reduction = int(r), int(iters), reduction
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
                        V = orthonormalise(Zd.t() @ (Zd @ V))
                    self.V.copy_(V)  # in place: a captured CUDA graph keeps reading this buffer
            loss = _tail_energy(Z, self.V)
            return loss / Z.shape[1] if self.reduction == "elements" else loss
