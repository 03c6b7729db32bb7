"""The trained module: student + projector(s) + spectral state, one ``nn.Module`` so DDP wraps
exactly what trains (the frozen teacher stays outside, DESIGN.md §6)."""

from __future__ import annotations

import torch.nn as nn


class DistillModel(nn.Module):
    def __init__(self, student, task, distiller=None, spectral=None, weight: float = 1.0, spectral_weight: float = 1.0):
        super().__init__()
        self.student, self.distiller, self.spectral = student, distiller, spectral
        self.task = task
        self.weight, self.spectral_weight = float(weight), float(spectral_weight)

    def extra_modules(self) -> nn.ModuleDict:
        """What a checkpoint saves besides the student (projectors, the spectral subspace)."""
        d = nn.ModuleDict()
        if self.distiller is not None:
            d["distiller"] = self.distiller
        if self.spectral is not None:
            d["spectral"] = self.spectral
        return d

    def forward(self, x, y, zt=None):
        out, zs = self.student(x, return_features=True)
        losses = {"task": self.task.loss(out, y)}
        total = losses["task"]
        if self.distiller is not None:
            if hasattr(zt, "get"):  # computed on a side stream (train/loop.py: PendingFeatures)
                zt = zt.get()
            losses["distill"] = self.distiller(zs, zt)["distill"]
            total = total + self.weight * losses["distill"]
        if self.spectral is not None:
            losses["spectral"] = self.spectral(zs)
            total = total + self.spectral_weight * losses["spectral"]
        return total, losses
