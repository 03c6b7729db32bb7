"""What every task provides (see ``depth.py`` for a complete example).

A task is one file that subclasses :class:`Task` and is registered in ``tasks/__init__.py``;
training, export, the bench and the report read everything task-specific through this class.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SampleKey:
    """A per-pixel map of a sample, (H, W) or (H, W, C), and how geometric transforms move it with the image."""

    name: str
    #: "bilinear" for pictures; "nearest" where interpolation would invent values (class ids, metric depth)
    resize: str = "nearest"
    #: "mirror": the columns reversed; "vector": reversed and channel 0 (the x component) negated, as a
    #: horizontal flip turns a vector field (surface normals, optical flow) pointing right into one pointing left
    flip: str = "mirror"


IMAGE = SampleKey("image", resize="bilinear")  # the RGB input every task reads


class Task:
    name = "task"
    #: the metric that picks ``best.pt`` and heads the tables (its direction: :attr:`higher_is_better`)
    primary_metric = ""
    #: the metrics a comparison table shows, the primary one first (as in the paper's Table 1)
    table_metrics: tuple[str, ...] = ()
    #: metrics (of those the accumulator computes) where a smaller value is better
    lower_is_better_metrics: frozenset[str] = frozenset()
    #: dense tasks need a decoder; classification uses only the encoder
    dense = True
    #: whether augmentation may randomly crop (and rescale) a sample
    may_crop = True
    #: the per-pixel maps of a sample this task reads; resize, crop and flip move exactly these
    sample_keys: tuple[SampleKey, ...] = (IMAGE,)

    def __init__(self, num_classes: int | None = None, class_names=None, **_):
        # Unknown arguments are ignored: a checkpoint's task_args may carry ones an older version recorded.
        self.num_classes = num_classes
        self.class_names = list(class_names) if class_names else None

    @classmethod
    def args_from_source(cls, source, cfg) -> dict:
        """Arguments that rebuild the task later (saved in the checkpoint as ``task_args``), from the
        training data source and the run's :class:`~edgekd.config.RunConfig` ``cfg`` (``cfg.data.image_size``)."""
        return {}

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

    def lower_is_better(self, metric: str) -> bool:
        """Whether a smaller value of ``metric`` is the better one."""
        return metric in self.lower_is_better_metrics

    @property
    def higher_is_better(self) -> bool:
        """Whether a larger primary metric is the better one (read from :attr:`lower_is_better_metrics`)."""
        return not self.lower_is_better(self.primary_metric)

    def output_range(self) -> list[float] | None:
        """[low, high] of the (activated) output, where the export states one for the device."""
        return None

    def metadata(self) -> dict:
        meta = {"task": self.name, "out_channels": self.out_channels}
        if self.output_range() is not None:
            meta["output_range"] = self.output_range()
        return meta

    # Drawing (the report's predictions figure).  ``context`` holds settings shared by the pictures
    # of one figure (e.g. one depth scale), from :meth:`picture_context`.

    def picture_context(self, samples: list[dict]) -> dict:
        """Settings shared by every picture of one figure."""
        return {}

    def to_picture(self, pred: np.ndarray, sample: dict, context: dict | None = None) -> np.ndarray:
        """One prediction (the head's output for ``sample``, without batch axis) as an (H, W, 3) uint8 picture."""
        raise NotImplementedError

    def truth_picture(self, sample: dict, context: dict | None = None) -> np.ndarray | None:
        """The ground truth drawn as :meth:`to_picture` draws a prediction; None where it is not a picture."""
        return None

    def caption(self, pred: np.ndarray, sample: dict) -> str:
        """A title for one prediction's picture ("" = none)."""
        return ""

    def figure_key(self, samples: list[dict], preds: np.ndarray, context: dict) -> dict | None:
        """What reads the pictures: ``{"colour_bar": {cmap, vmin, vmax, label}}`` or
        ``{"classes": [(rgb uint8 triple, name), ...]}``; None for nothing."""
        return None


def to_uint8(rgb01: np.ndarray) -> np.ndarray:
    """(H, W, 3) floats in [0, 1] -> uint8 (rounded, clipped)."""
    return (np.clip(rgb01, 0, 1) * 255 + 0.5).astype(np.uint8)
