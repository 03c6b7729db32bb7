"""Monocular depth: 1 channel of positive metres, SILog loss, Eigen metrics."""

from __future__ import annotations

import numpy as np

from .base import IMAGE, SampleKey, Task, to_uint8

DEPTH_METRICS = ("d1", "d2", "d3", "abs_rel", "sq_rel", "rmse", "rmse_log", "log10")
COLOUR_MAP = "plasma_r"  # near is bright


class DepthTask(Task):
    name = "depth"
    primary_metric = "d1"
    table_metrics = ("d1", "abs_rel", "rmse")
    lower_is_better_metrics = frozenset({"abs_rel", "sq_rel", "rmse", "rmse_log", "log10"})
    may_crop = False  # a crop rescales the picture but not the metres: it would teach a wrong scale
    sample_keys = (IMAGE, SampleKey("depth"))  # metres: nearest, never an invented in-between depth
    min_depth = 1e-3

    def __init__(self, max_depth: float = 10.0, eval_crop=None, variance_focus: float = 0.85, **kw):
        super().__init__(**kw)
        self.max_depth = float(max_depth)
        self.eval_crop = eval_crop
        self.variance_focus = variance_focus

    @classmethod
    def args_from_source(cls, source, cfg):
        """The depth range, and the source's evaluation crop (e.g. NYUv2's Eigen crop) at the training resolution."""
        args = {"max_depth": cfg.data.max_depth}
        frac = getattr(source, "eval_crop_fraction", None)
        if frac is not None:
            h, w = cfg.data.image_size
            args["eval_crop"] = [round(frac[0] * h), round(frac[1] * h), round(frac[2] * w), round(frac[3] * w)]
        return args

    @property
    def out_channels(self):
        return 1

    def target(self, sample):
        return sample["depth"]

    def activation(self, x):
        # A sigmoid scaled to the depth range keeps the output positive and bounded (<= max depth).
        return x.sigmoid() * self.max_depth + self.min_depth

    def loss(self, pred, target):
        """Scale-invariant log loss (Eigen et al. 2014) with variance focus 0.85, x10 as in BTS."""
        import torch

        pred = pred[:, 0].float()
        target = target.float()
        valid = (target > self.min_depth) & (target <= self.max_depth)
        # Masked means instead of boolean indexing: no data-dependent shapes, so no host sync
        # (and the step can be captured as a CUDA graph).
        d = torch.where(valid, torch.log(pred) - torch.log(target.clamp_min(self.min_depth)), torch.zeros_like(pred))
        n = valid.sum().clamp_min(1)
        mean = d.sum() / n
        var = (d * d).sum() / n - self.variance_focus * mean * mean
        return 10.0 * torch.sqrt(var.clamp_min(0) + 1e-8)

    def metrics(self):
        return DepthMetrics(self.min_depth, self.max_depth, self.eval_crop)

    def output_range(self):
        return [self.min_depth, self.max_depth]

    def metadata(self):
        return {**super().metadata(), "output": "depth in metres", "min_depth": self.min_depth, "max_depth": self.max_depth}

    def picture_context(self, samples):
        # one depth scale for every image, so that a single colour bar (metres) reads them all
        return {"vmax": float(max(np.percentile(s["depth"], 99) for s in samples))}

    def _colour(self, depth, context):
        from matplotlib import colormaps

        vmax = (context or {}).get("vmax") or self.max_depth
        return to_uint8(colormaps[COLOUR_MAP](np.clip(np.asarray(depth, np.float64) / vmax, 0, 1))[..., :3])

    def to_picture(self, pred, sample, context=None):
        return self._colour(pred[0], context)

    def truth_picture(self, sample, context=None):
        return self._colour(sample["depth"], context)

    def figure_key(self, samples, preds, context):
        return {"colour_bar": {"cmap": COLOUR_MAP, "vmin": 0.0, "vmax": (context or {}).get("vmax") or self.max_depth,
                               "label": "depth (m)"}}


def depth_errors(pred: np.ndarray, gt: np.ndarray, min_depth=1e-3, max_depth=10.0, crop=None) -> dict | None:
    """Standard depth metrics for one image (Eigen et al. 2014), on pixels with gt in (min_depth, max_depth].

    ``crop`` = (top, bottom, left, right) limits the evaluated region (the Eigen crop on NYUv2 is
    ``(45, 471, 41, 601)``).  Predictions are clipped to the same range, as BTS/AdaBins evaluate.
    """
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    valid = (gt > min_depth) & (gt <= max_depth)
    if crop is not None:
        m = np.zeros_like(valid)
        t, b, l, r = crop
        m[t:b, l:r] = True
        valid &= m
    if not valid.any():
        return None
    p = np.clip(pred[valid], min_depth, max_depth)
    g = gt[valid]
    thresh = np.maximum(g / p, p / g)
    return {
        "d1": float((thresh < 1.25).mean()),
        "d2": float((thresh < 1.25**2).mean()),
        "d3": float((thresh < 1.25**3).mean()),
        "abs_rel": float(np.mean(np.abs(g - p) / g)),
        "sq_rel": float(np.mean((g - p) ** 2 / g)),
        "rmse": float(np.sqrt(np.mean((g - p) ** 2))),
        "rmse_log": float(np.sqrt(np.mean((np.log(g) - np.log(p)) ** 2))),
        "log10": float(np.mean(np.abs(np.log10(g) - np.log10(p)))),
    }


class DepthMetrics:
    """Per-image depth metrics averaged over images."""

    def __init__(self, min_depth=1e-3, max_depth=10.0, crop=None):
        self.min_depth, self.max_depth, self.crop = min_depth, max_depth, crop
        self.sums = dict.fromkeys(DEPTH_METRICS, 0.0)
        self.count = 0

    def update(self, pred, gt):
        pred = np.asarray(pred)
        gt = np.asarray(gt)
        if pred.ndim == 4:
            pred = pred[:, 0]
        for p, g in zip(pred, gt):
            e = depth_errors(p, g, self.min_depth, self.max_depth, self.crop)
            if e is None:
                continue
            for k, v in e.items():
                self.sums[k] += v
            self.count += 1

    def compute(self) -> dict:
        n = max(self.count, 1)
        return {k: v / n for k, v in self.sums.items()}
