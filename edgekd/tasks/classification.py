"""Image classification: logits from the pooled encoder features, cross-entropy, top-1/top-5."""

from __future__ import annotations

from . import register_task
from .base import Task
from .metrics import ClassificationMetrics


@register_task
class ClassificationTask(Task):
    name = "classification"
    primary_metric = "top1"
    higher_is_better = True
    dense = False

    @property
    def out_channels(self):
        return int(self.num_classes)

    def target(self, sample):
        return sample["label"]

    def loss(self, pred, target):
        import torch.nn.functional as F

        return F.cross_entropy(pred.float(), target.long())

    def metrics(self):
        return ClassificationMetrics()

    def metadata(self):
        return {**super().metadata(), "output": "logits per class", "class_names": self.class_names or []}
