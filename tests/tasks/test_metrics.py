"""Task metrics against hand-computed values."""

import math

import numpy as np
import pytest

from edgekd.tasks import create_task
from edgekd.tasks.classification import ClassificationMetrics
from edgekd.tasks.colour_space import lab_to_rgb, rgb_to_lab
from edgekd.tasks.depth import DepthMetrics, depth_errors
from edgekd.tasks.image_metrics import psnr, ssim
from edgekd.tasks.segmentation import SegmentationMetrics


def test_depth_metrics_with_range_mask_and_crop():
    gt = np.array([[1.0, 2.0, 0.0], [4.0, 20.0, 2.0]])  # 0 and 20 are outside (1e-3, 10]
    pred = np.array([[1.0, 3.0, 5.0], [4.0, 1.0, 100.0]])
    e = depth_errors(pred, gt, max_depth=10.0)
    # valid pixels (gt, pred): (1,1), (2,3), (4,4), (2,10 after clipping 100) -> ratios 1, 1.5, 1, 5
    g = np.array([1.0, 2.0, 4.0, 2.0])
    p = np.array([1.0, 3.0, 4.0, 10.0])
    assert e["d1"] == pytest.approx(2 / 4)  # 1.5 > 1.25
    assert e["d2"] == pytest.approx(3 / 4)  # 1.5 < 1.5625
    assert e["d3"] == pytest.approx(3 / 4)  # 5 > 1.953
    assert e["abs_rel"] == pytest.approx(np.mean(np.abs(g - p) / g))
    assert e["rmse"] == pytest.approx(math.sqrt(np.mean((g - p) ** 2)))
    assert e["log10"] == pytest.approx(np.mean(np.abs(np.log10(g) - np.log10(p))))
    # crop to the first column only: pixels (1,1) and (4,4) -> perfect
    c = depth_errors(pred, gt, max_depth=10.0, crop=(0, 2, 0, 1))
    assert c["d1"] == 1.0 and c["rmse"] == 0.0


def test_depth_metrics_average_over_images():
    m = DepthMetrics(max_depth=10)
    m.update(np.ones((2, 1, 2, 2)), np.stack([np.ones((2, 2)), np.full((2, 2), 2.0)]))
    assert m.compute()["d1"] == pytest.approx(0.5)
    assert m.compute()["abs_rel"] == pytest.approx(0.25)


def test_miou_with_ignore_index():
    gt = np.array([[0, 0, 1, 255]])
    pred = np.array([[0, 1, 1, 0]])
    m = SegmentationMetrics(2, 255)
    m.update(pred, gt)
    r = m.compute()
    # class 0: tp 1, fp 0, fn 1 -> 1/2 ; class 1: tp 1, fp 1 -> 1/2 ; the void pixel is ignored
    assert r["miou"] == pytest.approx(0.5)
    assert r["pixel_acc"] == pytest.approx(2 / 3)


def test_miou_skips_absent_classes_and_takes_logits():
    logits = np.zeros((1, 3, 1, 2))
    logits[0, 0, 0, 0] = 1
    logits[0, 1, 0, 1] = 1
    m = SegmentationMetrics(3)
    m.update(logits, np.array([[[0, 1]]]))
    assert m.compute()["miou"] == 1.0


def test_top1_top5():
    m = ClassificationMetrics((1, 5))
    logits = np.array([[0.1, 0.9, 0.0], [0.8, 0.1, 0.1]])
    m.update(logits, np.array([1, 2]))
    r = m.compute()
    assert r["top1"] == 0.5 and r["top5"] == 1.0


def test_psnr_hand_value():
    a = np.zeros((4, 4))
    b = np.full((4, 4), 0.1)
    assert psnr(a, b) == pytest.approx(20.0)
    assert ssim(a + 0.5, a + 0.5) == pytest.approx(1.0)
    assert ssim(a, b + np.random.default_rng(0).random((4, 4))) < 0.5


def test_lab_round_trip():
    rgb = np.random.default_rng(0).random((8, 8, 3))
    assert np.allclose(lab_to_rgb(rgb_to_lab(rgb)), rgb, atol=1e-4)


def test_colourisation_perfect_prediction_scores_high():
    t = create_task("colourisation")
    rng = np.random.default_rng(0)
    img = (rng.random((16, 16, 3)) * 255).astype(np.uint8)
    target = t.target({"image": img})[None]
    m = t.metrics()
    m.update(target[:, 1:], target)
    assert m.compute()["psnr"] > 60
