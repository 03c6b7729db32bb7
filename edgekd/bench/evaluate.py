"""The one way edgekd turns validation data into model inputs and model outputs into metrics (numpy only).

The bench's accuracy pass, INT8 calibration and its accuracy check (``export/quantize.py``) and the
export's parity inputs (:func:`validation_batch`) all call these functions, so their numbers cannot
drift apart: every sample is resized to the model's input size (bilinear image, nearest maps), the
task picks the picture the student sees, and it is ImageNet-normalised into float32 (3, H, W).
Nothing here imports torch: the bench runs on a device with numpy and a runtime alone.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np


def prepare_sample(sample: dict, hw, keys=None) -> dict:
    """A dataset sample resized to the model's ``hw`` = (height, width): the per-pixel maps in ``keys``
    (its task's ``sample_keys``; by default those of every registered task)."""
    from ..data.transforms import resize_sample
    from ..tasks import all_sample_keys

    return resize_sample(sample, *hw, all_sample_keys() if keys is None else keys)


def model_input(task, sample: dict) -> np.ndarray:
    """One prepared sample -> the float32 (3, H, W) input of the model."""
    from ..data.transforms import normalise

    return normalise(task.input_image(sample))


def input_batch(task, samples: Sequence[dict]) -> np.ndarray:
    """Prepared samples -> the float32 (N, 3, H, W) batch of the model."""
    return np.stack([model_input(task, s) for s in samples]).astype(np.float32)


def target_batch(task, samples: Sequence[dict]) -> np.ndarray:
    """Prepared samples -> the task's targets, stacked as the metrics expect them."""
    return np.stack([np.asarray(task.target(s)) for s in samples])


class PreparedSamples:
    """A dataset seen through :func:`prepare_sample`: the first ``n`` samples, resized when read."""

    def __init__(self, dataset, hw, n: int | None = None, keys=None):
        self.dataset, self.hw, self.keys = dataset, tuple(hw), keys
        self.n = len(dataset) if n is None else min(n, len(dataset))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.n))]
        if not -self.n <= i < self.n:
            raise IndexError(i)
        return prepare_sample(self.dataset[i % self.n], self.hw, self.keys)


def open_samples(data: str, split: str, hw, n: int, seed: int = 0, data_format: str = "auto", task=None,
                 direction: str = "AtoB", dataset_size: int | None = None, depth_scale: float = 0.0) -> PreparedSamples:
    """The first ``n`` prepared samples of ``data``'s ``split`` (a dataset of ``dataset_size``, default ``n``, is opened)."""
    from ..data import open_dataset

    ds = open_dataset(data, split, hw, n if dataset_size is None else dataset_size, seed, data_format,
                      task=getattr(task, "name", task), direction=direction, depth_scale=depth_scale)
    return PreparedSamples(ds, hw, n, getattr(task, "sample_keys", None))


def run_samples(cfg, task, n: int, split: str = "val") -> PreparedSamples:
    """``n`` prepared samples of a run's own data (its config ``cfg``, a :class:`~edgekd.config.RunConfig` or its dict):
    what export checks and calibrates on."""
    from ..config import RunConfig

    cfg = RunConfig.coerce(cfg)
    d = cfg.data
    # The validation split is opened at the run's val size, so its first images are those the run was judged on.
    opened = min(n, cfg.train.val_size) if split == "val" else n
    return open_samples(d.data, split, d.image_size, n, d.seed, d.data_format, task, d.direction, dataset_size=opened,
                        depth_scale=d.depth_scale)


def validation_batch(cfg: dict, task, n: int, split: str = "val") -> tuple[np.ndarray, list]:
    """``n`` preprocessed inputs (N, 3, H, W) and their samples from the run's own data (its config ``cfg``)."""
    samples = list(run_samples(cfg, task, n, split))
    return input_batch(task, samples), samples


def evaluate(infer: Callable[[np.ndarray], np.ndarray], task, samples: Sequence[dict], batch: int = 8,
             inputs: np.ndarray | None = None, progress=None) -> dict:
    """Task metrics of ``infer`` (a batch in, the model's output out) on prepared ``samples``.

    ``inputs`` are the samples' model inputs when the caller has them already (they are made batch by
    batch otherwise); ``progress`` (a tqdm-like bar) is advanced by each batch.
    """
    acc = task.metrics()
    for i in range(0, len(samples), batch):
        part = samples[i : i + batch]
        x = inputs[i : i + batch] if inputs is not None else input_batch(task, part)
        acc.update(infer(x), target_batch(task, part))
        if progress is not None:
            progress.update(len(part))
    return {k: v for k, v in acc.compute().items() if not isinstance(v, list)}
