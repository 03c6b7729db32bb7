"""Projector ensemble (Chen et al., NeurIPS 2022): three projectors averaged, ``1 - cos`` on pooled features."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .projector import Projector


def ensemble_loss(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``mean(1 - cos(pool(s), pool(t)))`` over the batch."""
    ps = s.float().mean((2, 3)) if s.dim() == 4 else s.float()
    pt = t.float().mean((2, 3)) if t.dim() == 4 else t.float()
    return (1.0 - F.cosine_similarity(ps, pt, dim=1)).mean()


def ensemble_projector(in_channels: int, out_channels: int, projection) -> "ProjectorEnsemble":
    """The ensemble distance's projector: three of them, with a ReLU when student features are mapped."""
    return ProjectorEnsemble(in_channels, out_channels, n=3, relu=projection.maps == "student")


class ProjectorEnsemble(nn.Module):
    """The mean of ``n`` projectors.  ``relu`` only for the traditional direction: an inverted
    projector targets MobileNetV2's last stage, whose output is linear and can be negative."""

    def __init__(self, in_channels: int, out_channels: int, n: int = 3, relu: bool = False):
        super().__init__()
        self.projectors = nn.ModuleList(Projector(in_channels, out_channels) for _ in range(n))
        self.relu = relu

    def forward(self, x):
        outs = [p(x) for p in self.projectors]
        if self.relu:
            outs = [F.relu(o) for o in outs]
        return torch.stack(outs).mean(0)

    @property
    def matrix(self) -> torch.Tensor:
        return torch.stack([p.matrix for p in self.projectors]).mean(0)

    @torch.no_grad()
    def singular_values(self) -> torch.Tensor:
        return torch.linalg.svdvals(self.matrix.detach().float().cpu())
