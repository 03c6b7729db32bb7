"""Probabilistic knowledge transfer (Passalis & Tefas 2018) on globally pooled features."""

import torch

EPS = 1e-7


def _cosine_kernel(x: torch.Tensor) -> torch.Tensor:
    x = x / (x.norm(dim=1, keepdim=True) + EPS)
    x = torch.nan_to_num(x)
    k = (x @ x.t() + 1.0) / 2.0
    return k / k.sum(dim=1, keepdim=True)


def pkt_loss(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``mean(T * log((T + eps) / (S + eps)))`` of the batch's row-normalised cosine kernels."""
    S = _cosine_kernel(s.float().mean((2, 3)) if s.dim() == 4 else s.float())
    T = _cosine_kernel(t.float().mean((2, 3)) if t.dim() == 4 else t.float())
    return (T * torch.log((T + EPS) / (S + EPS))).mean()
