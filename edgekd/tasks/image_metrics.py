"""Image metrics in numpy shared by the tasks that predict pictures (PSNR, SSIM); each task's own
metrics live in its file.  Used by validation during training and by the torch-free bench."""

from __future__ import annotations

import math

import numpy as np


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
