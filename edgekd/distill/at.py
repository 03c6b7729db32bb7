"""Attention transfer (Zagoruyko & Komodakis 2017)."""

import torch
import torch.nn.functional as F


def attention_map(x: torch.Tensor) -> torch.Tensor:
    """``normalize(mean_c(x^2).flatten())``: (B, C, H, W) -> (B, H*W), unit L2 rows."""
    return F.normalize(x.float().pow(2).mean(1).flatten(1), dim=1)


def at_loss(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``mean((a_s - a_t)^2)``; channel counts may differ; the larger map is resized to the smaller."""
    if s.shape[-2:] != t.shape[-2:]:
        if s.shape[-2] * s.shape[-1] > t.shape[-2] * t.shape[-1]:
            s = F.interpolate(s, size=t.shape[-2:], mode="bilinear", align_corners=False)
        else:
            t = F.interpolate(t, size=s.shape[-2:], mode="bilinear", align_corners=False)
    return (attention_map(s) - attention_map(t)).pow(2).mean()
