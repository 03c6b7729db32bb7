"""Task metrics in numpy (used by validation during training and by the torch-free bench)."""

from __future__ import annotations

import math

import numpy as np

DEPTH_METRICS = ("d1", "d2", "d3", "abs_rel", "sq_rel", "rmse", "rmse_log", "log10")


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


class SegmentationMetrics:
    """Confusion-matrix mIoU (over classes present in prediction or ground truth) and pixel accuracy."""

    def __init__(self, num_classes: int, ignore_index: int = 255):
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


def psnr(pred: np.ndarray, gt: np.ndarray, data_range: float = 1.0) -> float:
    mse = float(np.mean((np.asarray(pred, np.float64) - np.asarray(gt, np.float64)) ** 2))
    if mse == 0:
        return float("inf")
    return 10.0 * math.log10(data_range**2 / mse)


def ssim(pred: np.ndarray, gt: np.ndarray, data_range: float = 1.0) -> float:
    """SSIM (Wang et al. 2004) with an 8x8 uniform window, on (H, W) or (H, W, C) images in [0, data_range]."""
    x = np.asarray(pred, np.float64)
    y = np.asarray(gt, np.float64)
    if x.ndim == 3:
        return float(np.mean([ssim(x[..., c], y[..., c], data_range) for c in range(x.shape[2])]))
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    w = min(8, x.shape[0], x.shape[1])

    def box(a):
        s = np.cumsum(np.cumsum(np.pad(a, ((1, 0), (1, 0))), 0), 1)
        return (s[w:, w:] - s[:-w, w:] - s[w:, :-w] + s[:-w, :-w]) / (w * w)

    mx, my = box(x), box(y)
    vx, vy, cxy = box(x * x) - mx**2, box(y * y) - my**2, box(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(s.mean())


class ImageMetrics:
    """PSNR and SSIM over a batch of RGB images in [0, 1], averaged per image."""

    def __init__(self):
        self.psnr = self.ssim = 0.0
        self.count = 0

    def update_rgb(self, pred_rgb, gt_rgb):
        for p, g in zip(pred_rgb, gt_rgb):
            self.psnr += min(psnr(p, g), 100.0)
            self.ssim += ssim(p, g)
            self.count += 1

    def compute(self) -> dict:
        n = max(self.count, 1)
        return {"psnr": self.psnr / n, "ssim": self.ssim / n}
