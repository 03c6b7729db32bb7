"""Paired image translation (A -> B, e.g. satellite -> map; on the scenes, RGB -> label colours)."""

from __future__ import annotations

import numpy as np

from .base import IMAGE, SampleKey, Task, to_uint8
from .image_metrics import ImageMetrics


class TranslationTask(Task):
    name = "translation"
    primary_metric = "psnr"
    table_metrics = ("psnr", "ssim")
    # the paired picture: target_image (pix2pix A|B), or the synthetic scenes' label-colour map
    sample_keys = (IMAGE, SampleKey("target_image", resize="bilinear"), SampleKey("colour_map", resize="bilinear"))

    @property
    def out_channels(self):
        return 3

    def target(self, sample):
        b = sample.get("target_image", sample.get("colour_map"))
        return (b.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)  # RGB in [-1, 1], (3, H, W)

    def activation(self, x):
        return x.tanh()

    def loss(self, pred, target):
        return (pred.float() - target).abs().mean()

    def metrics(self):
        return _TranslationMetrics()

    def metadata(self):
        return {**super().metadata(), "output": "RGB in [-1, 1]"}

    def to_picture(self, pred, sample, context=None):
        return to_uint8((np.asarray(pred).transpose(1, 2, 0) + 1) / 2)

    def truth_picture(self, sample, context=None):
        return to_uint8((self.target(sample).transpose(1, 2, 0) + 1) / 2)


class _TranslationMetrics(ImageMetrics):
    def update(self, pred, target):
        to01 = lambda a: (np.clip(np.asarray(a, np.float64), -1, 1).transpose(0, 2, 3, 1) + 1) / 2  # noqa: E731
        self.update_rgb(to01(pred), to01(target))
