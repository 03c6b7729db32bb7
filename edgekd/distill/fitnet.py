"""FitNets (Romero et al. 2015): mean squared error between feature maps."""

import torch


def fitnet_loss(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``mean((s - t)^2)`` over two same-shaped (B, C, H, W) maps."""
    return (s.float() - t.float()).pow(2).mean()
