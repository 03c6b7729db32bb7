"""Colourisation: predict ab (Lab) from L; PSNR/SSIM on the rebuilt RGB."""

from __future__ import annotations

import numpy as np

from .base import Task, to_uint8
from .colour_space import lab_to_rgb, rgb_to_lab
from .image_metrics import ImageMetrics

AB_SCALE = 110.0  # ab are predicted in [-1, 1] and scaled by this


def rebuild_rgb(lightness: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """RGB in [0, 1], channels last, from the target's L (L / 100) and scaled ab, both channels first.

    Works on one image (L (H, W), ab (2, H, W)) or a batch (L (B, H, W), ab (B, 2, H, W))."""
    lightness, ab = np.asarray(lightness, np.float64), np.asarray(ab, np.float64)
    a, b = ab[..., 0, :, :], ab[..., 1, :, :]
    return lab_to_rgb(np.stack([lightness * 100.0, a * AB_SCALE, b * AB_SCALE], -1))


class ColourisationTask(Task):
    name = "colourisation"
    primary_metric = "psnr"
    table_metrics = ("psnr", "ssim")

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

    def to_picture(self, pred, sample, context=None):
        return to_uint8(rebuild_rgb(self.target(sample)[0], pred))

    def truth_picture(self, sample, context=None):
        tgt = self.target(sample)
        return to_uint8(rebuild_rgb(tgt[0], tgt[1:]))


class _ColourMetrics(ImageMetrics):
    def update(self, pred, target):
        target = np.asarray(target, np.float64)
        self.update_rgb(rebuild_rgb(target[:, 0], pred), rebuild_rgb(target[:, 0], target[:, 1:]))
