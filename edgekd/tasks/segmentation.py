"""Semantic segmentation: K logits per pixel, cross-entropy with ignore index 255, mIoU."""

from __future__ import annotations

import math

import numpy as np

from .base import IMAGE, SampleKey, Task

IGNORE_INDEX = 255


class SegmentationTask(Task):
    name = "segmentation"
    primary_metric = "miou"
    table_metrics = ("miou", "pixel_acc")
    sample_keys = (IMAGE, SampleKey("labels"))  # class ids: nearest

    @classmethod
    def args_from_source(cls, source, cfg):
        return {"num_classes": len(source.classes), "class_names": list(source.classes)}

    @property
    def out_channels(self):
        return int(self.num_classes)

    def target(self, sample):
        return sample["labels"]

    def loss(self, pred, target):
        import torch.nn.functional as F

        return F.cross_entropy(pred.float(), target.long(), ignore_index=IGNORE_INDEX)

    def metrics(self):
        return SegmentationMetrics(self.num_classes, IGNORE_INDEX)

    def metadata(self):
        return {**super().metadata(), "output": "logits per class", "ignore_index": IGNORE_INDEX,
                "class_names": self.class_names or []}

    @staticmethod
    def palette() -> np.ndarray:
        """(256, 3) uint8: the scenes' class colours, repeated over every label value."""
        from ..data.scene_render import PALETTE

        return np.resize(PALETTE, (256, 3)).astype(np.uint8)

    def to_picture(self, pred, sample, context=None):
        return self.palette()[np.asarray(pred).argmax(0)]

    def truth_picture(self, sample, context=None):
        return self.palette()[sample["labels"]]

    def figure_key(self, samples, preds, context):
        """A legend of the classes that appear in the figure (colour -> name)."""
        shown = set()
        for s, p in zip(samples, preds):
            shown |= set(np.unique(s["labels"]).tolist()) | set(np.unique(np.asarray(p).argmax(0)).tolist())
        names, pal = list(self.class_names or []), self.palette()
        return {"classes": [(pal[c], names[c] if c < len(names) else f"class {c}") for c in sorted(shown) if c != IGNORE_INDEX]}


class SegmentationMetrics:
    """Confusion-matrix mIoU (over classes present in prediction or ground truth) and pixel accuracy."""

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX):
        self.k, self.ignore = int(num_classes), ignore_index
        self.conf = np.zeros((self.k, self.k), np.int64)

    def update(self, logits_or_pred, gt):
        p = np.asarray(logits_or_pred)
        if p.ndim == 4:  # (B, K, H, W) logits
            p = p.argmax(1)
        g = np.asarray(gt).astype(np.int64)
        valid = (g != self.ignore) & (g >= 0) & (g < self.k)
        idx = g[valid] * self.k + p[valid].astype(np.int64)
        self.conf += np.bincount(idx, minlength=self.k * self.k).reshape(self.k, self.k)

    def compute(self) -> dict:
        tp = np.diag(self.conf).astype(np.float64)
        union = self.conf.sum(0) + self.conf.sum(1) - tp
        present = union > 0
        iou = np.where(present, tp / np.maximum(union, 1), np.nan)
        return {
            "miou": float(np.nanmean(iou)) if present.any() else 0.0,
            "pixel_acc": float(tp.sum() / max(self.conf.sum(), 1)),
            "iou_per_class": [None if math.isnan(v) else float(v) for v in iou],
        }
