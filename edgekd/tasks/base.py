"""What every task provides (see ``depth.py`` for a complete example)."""

from __future__ import annotations

import numpy as np


class Task:
    name = "task"
    #: the metric that picks ``best.pt`` and heads the tables, and whether higher is better
    primary_metric = ""
    higher_is_better = True
    #: dense tasks need a decoder; classification uses only the encoder
    dense = True

    def __init__(self, num_classes: int | None = None, max_depth: float = 10.0, class_names=None, **_):
        self.num_classes = num_classes
        self.max_depth = float(max_depth)
        self.class_names = list(class_names) if class_names else None

    @property
    def out_channels(self) -> int:
        raise NotImplementedError

    def input_image(self, sample: dict) -> np.ndarray:
        """The (H, W, 3) uint8 picture the student sees."""
        return sample["image"]

    def target(self, sample: dict) -> np.ndarray:
        raise NotImplementedError

    def activation(self, x):
        """Map raw head outputs to the task's output space (kept in the exported graph)."""
        return x

    def loss(self, pred, target):
        raise NotImplementedError

    def metrics(self):
        """A fresh accumulator with ``update(pred, target)`` on numpy batches and ``compute() -> dict``."""
        raise NotImplementedError

    def metadata(self) -> dict:
        return {"task": self.name, "out_channels": self.out_channels}
