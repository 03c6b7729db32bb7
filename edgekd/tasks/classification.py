"""Image classification: logits from the pooled encoder features, cross-entropy, top-1/top-5."""

from __future__ import annotations

import numpy as np

from .base import Task


class ClassificationTask(Task):
    name = "classification"
    primary_metric = "top1"
    table_metrics = ("top1",)
    dense = False

    @classmethod
    def args_from_source(cls, source, cfg):
        # The scenes label each image by its main object (object_classes); an image folder by its folder.
        names = list(getattr(source, "object_classes", None) or source.classes)
        return {"num_classes": len(names), "class_names": names}

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

    def to_picture(self, pred, sample, context=None):
        # A label is no picture: the image it names is shown, and the caption says the label.
        return np.asarray(sample["image"], np.uint8)

    def caption(self, pred, sample):
        names = self.class_names or [str(i) for i in range(len(pred))]
        return f"true {names[sample['label']]} / pred {names[int(np.asarray(pred).argmax())]}"


class ClassificationMetrics:
    def __init__(self, topk=(1, 5)):
        self.topk = topk
        self.correct = dict.fromkeys(topk, 0)
        self.count = 0

    def update(self, logits, gt):
        logits = np.asarray(logits)
        gt = np.asarray(gt).reshape(-1)
        order = np.argsort(-logits, axis=1)
        for k in self.topk:
            kk = min(k, logits.shape[1])
            self.correct[k] += int((order[:, :kk] == gt[:, None]).any(1).sum())
        self.count += len(gt)

    def compute(self) -> dict:
        n = max(self.count, 1)
        return {f"top{k}": self.correct[k] / n for k in self.topk}
