"""The distillation term: projector(s) + a distance, for either projection direction.

Returns a dict of losses (mdistiller's manner).  ``Z_t`` is resized bilinearly
to ``Z_s``'s grid when they differ (DESIGN.md §1).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import EdgekdError
from .at import at_loss
from .ensemble import ProjectorEnsemble, ensemble_loss
from .fitnet import fitnet_loss
from .pkt import pkt_loss
from .projector import Projector

DISTANCES = {"fitnet": fitnet_loss, "at": at_loss, "pkt": pkt_loss, "ensemble": ensemble_loss}
NORMALIZATIONS = ("none", "layernorm", "batchnorm")


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
        if method not in DISTANCES:
            raise EdgekdError(f"unknown method {method!r}; use one of: {', '.join(DISTANCES)}")
        if projection not in ("inverted", "traditional"):
            raise EdgekdError(f"unknown projection {projection!r}; use inverted or traditional")
        self.method, self.projection = method, projection
        cin, cout = (teacher_channels, student_channels) if projection == "inverted" else (student_channels, teacher_channels)
        if method == "ensemble":
            self.projector = ProjectorEnsemble(cin, cout, n=3, relu=projection == "traditional")
        else:
            self.projector = Projector(cin, cout)
        self.distance = DISTANCES[method]
        self.register_buffer("P0", self.projector.matrix.detach().clone())

    def forward(self, zs: torch.Tensor, zt: torch.Tensor) -> dict:
        if zt.shape[-2:] != zs.shape[-2:]:
            zt = F.interpolate(zt, size=zs.shape[-2:], mode="bilinear", align_corners=False)
        zt = zt.to(zs.dtype)
        if self.projection == "inverted":
            s, t = zs, self.projector(zt)
        else:
            s, t = self.projector(zs), zt
        s, t = normalize_features(s, self.normalize), normalize_features(t, self.normalize)
        return {"distill": self.distance(s, t)}

    def singular_values(self) -> torch.Tensor:
        return self.projector.singular_values()

    @torch.no_grad()
    def delta_singular_values(self) -> torch.Tensor:
        """Singular values of ``P - P0``: what training added to the random initialisation."""
        return torch.linalg.svdvals((self.projector.matrix.detach() - self.P0).float().cpu())
