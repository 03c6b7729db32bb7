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


class Distiller(nn.Module):
    def __init__(self, method: str, projection: str, student_channels: int, teacher_channels: int):
        super().__init__()
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

    def forward(self, zs: torch.Tensor, zt: torch.Tensor) -> dict:
        if zt.shape[-2:] != zs.shape[-2:]:
            zt = F.interpolate(zt, size=zs.shape[-2:], mode="bilinear", align_corners=False)
        zt = zt.to(zs.dtype)
        if self.projection == "inverted":
            s, t = zs, self.projector(zt)
        else:
            s, t = self.projector(zs), zt
        return {"distill": self.distance(s, t)}

    def singular_values(self) -> torch.Tensor:
        return self.projector.singular_values()
