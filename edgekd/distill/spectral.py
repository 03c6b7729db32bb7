"""Teacher-free spectral regulariser (paper §3.5, eq. 6).

On student features reshaped to ``Z`` (rows = batch x positions, columns =
channels), penalise the energy outside the top-``r`` right singular directions:
``||Z - Z V_r V_r^T||_F^2 / rows = sum_{i>r} sigma_i^2 / rows``.

Index convention: ``r`` singular directions are *kept* (sigma_1..sigma_r, largest
first); everything from sigma_{r+1} on is suppressed.  Smaller ``r`` = stronger.

Variants (``norm``), all of the residual ``R = Z - Z V_r V_r^T``, divided by ``sqrt(rows)``:

* ``fro2``: ``||R||_F^2 / rows`` (default; its gradient fades as the tail shrinks);
* ``fro``: ``||R||_F / sqrt(rows)``, the non-squared norm of eq. 6, whose gradient
  keeps its size as the tail shrinks;
* ``spectral``: ``||R||_2 / sqrt(rows) = sigma_{r+1} / sqrt(rows)``, the operator norm
  (only the largest suppressed direction is pushed).

``scope``: ``batch`` = one matrix over batch x positions; ``image`` = one matrix per
image (positions x channels), averaged over the batch.

With ``V_r`` computed without grad the gradient of that expression,
``2 Z (I - V_r V_r^T) / rows``, *is* the gradient of the tail energy, so the
fast path never differentiates an SVD: it keeps ``V_r`` from the previous step
and refreshes it with subspace iterations ``V <- qr(Z^T (Z V))`` (two skinny
matmuls each; no C x C Gram).  Always fp32: no half-precision SVD.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .registry import SPECTRAL_NORMS, SPECTRAL_SCOPES


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


_EPS = 1e-12  # keeps the square root differentiable at an exactly zero tail


def _per_image(z: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H*W, C) fp32; (B, N, C) tokens pass through."""
    z = z.float()
    return z.flatten(2).transpose(1, 2) if z.dim() == 4 else z


def _from_singular_values(s: torch.Tensor, r: int, rows: int, norm: str) -> torch.Tensor:
    tail = s[r:].pow(2).sum()
    if norm == "fro2":
        return tail / rows
    if norm == "fro":
        return torch.sqrt(tail / rows + _EPS)
    return (s[r] if r < s.numel() else s.sum() * 0.0) / rows**0.5


def spectral_loss_exact(z: torch.Tensor, r: int, norm: str = "fro2", scope: str = "batch") -> torch.Tensor:
    """Reference through a differentiable SVD (for tests): see the module docstring for ``norm``/``scope``."""
    mats = [_as_matrix(z)] if scope == "batch" else list(_per_image(z))
    vals = [_from_singular_values(torch.linalg.svdvals(Z), r, Z.shape[0], norm) for Z in mats]
    return torch.stack(vals).mean()


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


def _rayleigh_ritz(Z: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """Rotate the orthonormal basis ``V`` so its columns are ordered singular-vector estimates of ``Z``."""
    B = Z @ V
    _, W = torch.linalg.eigh(B.t() @ B)
    return V @ W.flip(1)


def _residual_measure(Z: torch.Tensor, V: torch.Tensor, r: int, norm: str) -> torch.Tensor:
    """The ``norm`` of ``Z - Z V_r V_r^T`` over sqrt(rows), with ``V`` (no grad) holding at least r columns.

    With V fixed, each gradient is exactly that of the singular-value expression: d(sigma_{r+1}) =
    u v^T = d||Z v_{r+1}||, and the tail energy's is 2 Z (I - V V^T)."""
    rows = Z.shape[0]
    if norm == "spectral":
        return (Z @ V[:, r]).norm() / rows**0.5
    tail = _tail_energy(Z, V[:, :r])
    return tail if norm == "fro2" else torch.sqrt(tail + _EPS)


class SpectralRegulariser(nn.Module):
    """Fast path of :func:`spectral_loss_exact`: warm-started subspace iterations (``iters`` per call).

    ``scope="batch"`` keeps the top singular directions from the previous step and refreshes them
    (no SVD after the first step); ``scope="image"`` has no state to carry (images change every
    step) and takes each image's exact directions from a batched SVD of its small
    (positions x channels) matrix, without grad.

    ``reduction="rows"`` gives exactly :func:`spectral_loss_exact`; ``"elements"`` also divides by
    the channel count (its square root for the non-squared norms), a mean per element like FitNets'
    MSE, which is what ``edgekd distill`` uses so that weights mean the same across students.
    """

    def __init__(self, r: int, iters: int = 2, reduction: str = "rows", norm: str = "fro2", scope: str = "batch"):
        super().__init__()
        if reduction not in ("rows", "elements"):
            raise ValueError(f"reduction must be 'rows' or 'elements', got {reduction!r}")
        if norm not in SPECTRAL_NORMS or scope not in SPECTRAL_SCOPES:
            raise ValueError(f"norm must be one of {SPECTRAL_NORMS} and scope one of {SPECTRAL_SCOPES}")
        self.r, self.iters, self.reduction, self.norm, self.scope = int(r), int(iters), reduction, norm, scope
        self.register_buffer("V", torch.empty(0), persistent=True)

    def _batch(self, Z: torch.Tensor) -> torch.Tensor:
        k = self.r + (self.norm == "spectral")  # the operator norm also needs direction r+1
        if k > min(Z.shape):
            return Z.sum() * 0.0
        with torch.no_grad():
            Zd = Z.detach()
            if self.V.shape != (Z.shape[1], k) or self.V.device != Z.device:
                self.V = top_right_singular_vectors(Zd, k)
            else:
                V = self.V
                for _ in range(self.iters):
                    V = orthonormalise(Zd.t() @ (Zd @ V))
                if self.norm == "spectral":
                    V = _rayleigh_ritz(Zd, V)
                self.V.copy_(V)  # in place: a captured CUDA graph keeps reading this buffer
        return _residual_measure(Z, self.V, self.r, self.norm)

    def _images(self, z: torch.Tensor) -> torch.Tensor:
        Zb = _per_image(z)
        k = self.r + (self.norm == "spectral")
        if k > min(Zb.shape[1:]):
            return Zb.sum() * 0.0
        with torch.no_grad():
            Vb = torch.linalg.svd(Zb.detach(), full_matrices=False).Vh[:, :k].transpose(1, 2)
        return torch.stack([_residual_measure(Z, V, self.r, self.norm) for Z, V in zip(Zb, Vb)]).mean()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=z.device.type, enabled=False):
            loss = self._batch(_as_matrix(z)) if self.scope == "batch" else self._images(z)
            if self.reduction == "elements":
                c = z.shape[1] if z.dim() == 4 else z.shape[-1]
                loss = loss / (c if self.norm == "fro2" else c**0.5)
            return loss
