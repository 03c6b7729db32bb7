"""Colourisation: predict ab (Lab) from L; PSNR/SSIM on the rebuilt RGB."""

from __future__ import annotations

import numpy as np

from . import register_task
from .base import Task
from .colour import lab_to_rgb, rgb_to_lab
from .metrics import ImageMetrics

AB_SCALE = 110.0  # ab are predicted in [-1, 1] and scaled by this


@register_task
class ColourisationTask(Task):
    name = "colourisation"
    primary_metric = "psnr"
    higher_is_better = True

    @property
    def out_channels(self):
        return 2

    def input_image(self, sample):
        # The student sees the lightness only, replicated to three channels so any RGB encoder fits.
        L = rgb_to_lab(sample["image"].astype(np.float32) / 255.0)[..., 0]
        grey = np.clip(L / 100.0 * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)

    def target(self, sample):
        lab = rgb_to_lab(sample["image"].astype(np.float32) / 255.0)
        # (3, H, W): L kept for rebuilding RGB in the metrics; ab scaled to [-1, 1] for the loss.
        return np.stack([lab[..., 0] / 100.0, lab[..., 1] / AB_SCALE, lab[..., 2] / AB_SCALE]).astype(np.float32)

    def activation(self, x):
        return x.tanh()

    def loss(self, pred, target):
        return (pred.float() - target[:, 1:]).abs().mean()

    def metrics(self):
        return _ColourMetrics()

    def metadata(self):
        return {**super().metadata(), "output": "ab / 110 in [-1, 1] (Lab); input is L replicated to RGB"}


class _ColourMetrics(ImageMetrics):
    def update(self, pred, target):
        pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
        L = target[:, 0] * 100.0
        rebuilt = lab_to_rgb(np.stack([L, pred[:, 0] * AB_SCALE, pred[:, 1] * AB_SCALE], -1))
        truth = lab_to_rgb(np.stack([L, target[:, 1] * AB_SCALE, target[:, 2] * AB_SCALE], -1))
        self.update_rgb(rebuilt, truth)
