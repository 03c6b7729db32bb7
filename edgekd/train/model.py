"""The trained module: student + projector(s) + spectral state, one ``nn.Module`` so DDP wraps
exactly what trains (the frozen teacher stays outside, docs/method.md §1)."""

from __future__ import annotations

import torch
import torch.nn as nn

from .step import PendingFeatures


class DistillModel(nn.Module):
    """``forward(x, y, zt)`` -> (total, losses): ``L_task + w * L_distill + w_s * L_spectral``.

    ``zt`` is a tensor or a :class:`edgekd.train.step.PendingFeatures` (computed on a side stream).
    Weights may be set after construction and during training (``auto`` weights:
    :mod:`edgekd.train.strength`): they live in a device buffer filled in place, so a captured CUDA
    graph or a compiled module reads the current value instead of the one it was traced with.
    """

    def __init__(self, student, task, distiller=None, spectral=None, weight: float = 1.0, spectral_weight: float = 1.0):
        super().__init__()
        self.student, self.distiller, self.spectral = student, distiller, spectral
        self.task = task
        # Not in state_dict: a checkpoint keeps the weights as plain numbers (``loss_weights``).
        self.register_buffer("loss_weights", torch.tensor([float(weight), float(spectral_weight)]), persistent=False)

    @property
    def weight(self) -> float:
        return float(self.loss_weights[0])

    @weight.setter
    def weight(self, value: float):
        self.loss_weights[0].fill_(float(value))

    @property
    def spectral_weight(self) -> float:
        return float(self.loss_weights[1])

    @spectral_weight.setter
    def spectral_weight(self, value: float):
        self.loss_weights[1].fill_(float(value))

    def extra_modules(self) -> nn.ModuleDict:
        """What a checkpoint saves besides the student (projectors, the spectral subspace)."""
        d = nn.ModuleDict()
        if self.distiller is not None:
            d["distiller"] = self.distiller
        if self.spectral is not None:
            d["spectral"] = self.spectral
        return d

    def terms(self, x, y, zt=None) -> tuple[torch.Tensor, dict]:
        """``Z_s`` and the unweighted loss terms (``task``, and ``distill`` / ``spectral`` when on)."""
        out, zs = self.student(x, return_features=True)
        losses = {"task": self.task.loss(out, y)}
        if self.distiller is not None:
            if isinstance(zt, PendingFeatures):  # the teacher ran on a side stream: wait for it only now
                zt = zt.get()
            losses["distill"] = self.distiller(zs, zt)["distill"]
        if self.spectral is not None:
            losses["spectral"] = self.spectral(zs)
        return zs, losses

    def weights(self) -> dict:
        return {"distill": self.weight, "spectral": self.spectral_weight}

    def forward(self, x, y, zt=None):
        _, losses = self.terms(x, y, zt)
        index = {"distill": 0, "spectral": 1}
        total = sum(losses[k] if k == "task" else losses[k] * self.loss_weights[index[k]] for k in losses)
        return total, losses
