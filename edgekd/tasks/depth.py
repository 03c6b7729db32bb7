"""Monocular depth: 1 channel of positive metres, SILog loss, Eigen metrics."""

from __future__ import annotations

from . import register_task
from .base import Task
from .metrics import DepthMetrics


@register_task
class DepthTask(Task):
    name = "depth"
    primary_metric = "d1"
    higher_is_better = True
    min_depth = 1e-3

    def __init__(self, eval_crop=None, variance_focus: float = 0.85, **kw):
        super().__init__(**kw)
        self.eval_crop = eval_crop
        self.variance_focus = variance_focus

    @property
    def out_channels(self):
        return 1

    def target(self, sample):
        return sample["depth"]

    def activation(self, x):
        # A sigmoid scaled to the depth range keeps the output positive and bounded (<= max depth).
        return x.sigmoid() * self.max_depth + self.min_depth

    def loss(self, pred, target):
        """Scale-invariant log loss (Eigen et al. 2014) with variance focus 0.85, x10 as in BTS."""
        import torch

        pred = pred[:, 0].float()
        target = target.float()
        valid = (target > self.min_depth) & (target <= self.max_depth)
        # Masked means instead of boolean indexing: no data-dependent shapes, so no host sync
        # (and the step can be captured as a CUDA graph).
        d = torch.where(valid, torch.log(pred) - torch.log(target.clamp_min(self.min_depth)), torch.zeros_like(pred))
        n = valid.sum().clamp_min(1)
        mean = d.sum() / n
        var = (d * d).sum() / n - self.variance_focus * mean * mean
        return 10.0 * torch.sqrt(var.clamp_min(0) + 1e-8)

    def metrics(self):
        return DepthMetrics(self.min_depth, self.max_depth, self.eval_crop)

    def metadata(self):
        return {**super().metadata(), "output": "depth in metres", "min_depth": self.min_depth, "max_depth": self.max_depth}
