"""The distillation term: projector(s) + a distance, for either projection direction.

The distances and projections are named in :mod:`edgekd.distill.registry`.

Returns a dict of losses (mdistiller's manner).  ``Z_t`` is resized bilinearly
to ``Z_s``'s grid when they differ (docs/method.md §1).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import EdgekdError
from .registry import NORMALIZATIONS, get_distance, get_projection


def normalize_features(z: torch.Tensor, how: str) -> torch.Tensor:
    """Non-affine normalisation of a (B, C, H, W) map before the distance, applied to both sides.

    ``layernorm``: over the channels at each position; ``batchnorm``: each channel over batch x
    positions (batch statistics, no running state), as the projector studies' public code does
    (Miles & Mikolajczyk 2024; Chen et al. 2022).
    """
    if how == "none":
        return z
    z = z.float()
    if how == "layernorm":
        return F.layer_norm(z.permute(0, 2, 3, 1), z.shape[1:2]).permute(0, 3, 1, 2)
    return F.batch_norm(z, None, None, training=True, eps=1e-5)


class Distiller(nn.Module):
    """``d(Z_s, P(Z_t))`` (inverted) or ``d(P(Z_s), Z_t)`` (traditional), optionally on normalised features.

    ``P0``, a copy of the projector at initialisation, lets the spectrum of ``P - P0`` be logged:
    with weight decay too weak to remove directions, the learned part is what shows a low rank.
    """

    def __init__(self, method: str, projection: str, student_channels: int, teacher_channels: int, normalize: str = "none"):
        super().__init__()
        if normalize not in NORMALIZATIONS:
            raise EdgekdError(f"unknown normalisation {normalize!r}; use one of: {', '.join(NORMALIZATIONS)}")
        self.normalize = normalize
        distance, self._projection = get_distance(method), get_projection(projection)
        if self._projection.maps == "chosen":
            raise EdgekdError(f"projection {projection!r} is chosen before training from the features (edgekd.train.loop); "
                              f"build the Distiller with the projection it chose")
        self.method, self.projection = method, projection
        cin, cout = self._projection.channels(student_channels, teacher_channels)
        self.projector = distance.create_projector(cin, cout, self._projection)
        self.distance = distance.loss_fn()
        self.register_buffer("P0", self.projector.matrix.detach().clone())

    @staticmethod
    def align(zs: torch.Tensor, zt: torch.Tensor) -> torch.Tensor:
        """``Z_t`` on ``Z_s``'s grid (bilinear) and in its dtype."""
        if zt.shape[-2:] != zs.shape[-2:]:
            zt = F.interpolate(zt, size=zs.shape[-2:], mode="bilinear", align_corners=False)
        return zt.to(zs.dtype)

    def compared(self, zs: torch.Tensor, zt: torch.Tensor) -> tuple:
        """The two maps the distance compares (normalised when asked)."""
        s, t = self._projection.pair(self.projector, zs, self.align(zs, zt))
        return normalize_features(s, self.normalize), normalize_features(t, self.normalize)

    def forward(self, zs: torch.Tensor, zt: torch.Tensor) -> dict:
        s, t = self.compared(zs, zt)
        return {"distill": self.distance(s, t)}

    @torch.no_grad()
    def fit_r2(self, zs: torch.Tensor, zt: torch.Tensor) -> float:
        """How much of its target the projector explains: ``1 - ||target - P(source)||^2 / ||target - mean||^2``
        over rows (batch x positions) and channels; the target is ``Z_s`` (inverted) or ``Z_t`` (traditional)."""
        s, t = self.compared(zs, zt)
        target, pred = (s, t) if self._projection.maps == "teacher" else (t, s)
        target, pred = target.float(), pred.float()
        centred = target - target.mean((0, 2, 3), keepdim=True)
        return float(1.0 - (target - pred).pow(2).sum() / centred.pow(2).sum().clamp_min(1e-30))

    def singular_values(self) -> torch.Tensor:
        return self.projector.singular_values()

    @torch.no_grad()
    def delta_singular_values(self) -> torch.Tensor:
        """Singular values of ``P - P0``: what training added to the random initialisation."""
        return torch.linalg.svdvals((self.projector.matrix.detach() - self.P0).float().cpu())
