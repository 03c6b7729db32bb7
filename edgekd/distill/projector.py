"""The projector: a learnable linear map over channels (a 1x1 conv without bias).

Inverted (the paper's contribution, §3.2): teacher -> student channels,
``L = d(Z_s, P(Z_t))``.  Traditional (the baseline): student -> teacher,
``L = d(P(Z_s), Z_t)``.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class Projector(nn.Conv2d):
    """``Projector(in_channels, out_channels)``: ``P(x)`` for x of shape (B, in, H, W)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels, kernel_size=1, bias=False)

    @property
    def matrix(self) -> torch.Tensor:
        """P as an (out, in) matrix."""
        return self.weight[:, :, 0, 0]

    @torch.no_grad()
    def singular_values(self) -> torch.Tensor:
        """Singular values of P, largest first (the paper's Figure 3)."""
        return torch.linalg.svdvals(self.matrix.detach().float().cpu())



def single_projector(in_channels: int, out_channels: int, projection=None) -> Projector:
    """The projector of most distances: one :class:`Projector`, whichever the direction."""
    return Projector(in_channels, out_channels)


def effective_rank(sv: torch.Tensor) -> float:
    """exp(entropy) of the normalised singular values (Roy & Vetterli 2007): the figure the report plots
    (``edgekd.report.plots.effective_rank`` computes the same from the logged values)."""
    s = sv.double()
    s = s[s > 0]
    if s.numel() == 0:
        return 0.0
    p = s / s.sum()
    return float(torch.exp(-(p * p.log()).sum()))
