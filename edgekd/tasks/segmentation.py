"""Semantic segmentation: K logits per pixel, cross-entropy with ignore index 255, mIoU."""

from __future__ import annotations

from . import register_task
from .base import Task
from .metrics import SegmentationMetrics

IGNORE_INDEX = 255


@register_task
class SegmentationTask(Task):
    name = "segmentation"
    primary_metric = "miou"
    higher_is_better = True

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
