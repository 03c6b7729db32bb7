"""Gradient ratios of every distillation term on Z_s, at weight 1 and at ``auto`` (issue 10).

For the regime-C depth student of benchmarks/claims/claims.md (MobileNetV2 encoder-decoder, 96x128, batch 32,
64 synthetic scenes, random ViT-B/32 teacher, inverted projection), ImageNet-initialised and from
scratch: ``||w * dL_aux/dZ_s|| / ||dL_task/dZ_s||`` over the calibration batches (epoch 0's), and for
``auto`` the same ratio re-measured on epoch 1's batches (another order and augmentation: does the
weight chosen on the first batches transfer?).  No training step is taken.

    python benchmarks/strength/strength_table.py --out benchmarks/strength/results/strength.json
"""

from __future__ import annotations

import argparse
import json
import tempfile

import torch
from torch.utils.data import default_collate

from edgekd.config import load_profile
from edgekd.train.loop import Trainer
from edgekd.train.strength import ratios

CELLS = [("fitnet", "random"), ("at", "random"), ("pkt", "random"), ("ensemble", "random"), ("spectral", "none")]


def measure(init: str, method: str, teacher: str, ratio: float) -> dict:
    cfg = load_profile("jetson")
    cfg["model"]["student_weights"] = init
    cfg["data"]["image_size"] = [96, 128]
    cfg["train"].update(train_size=64, val_size=16, batch_size=32, workers=0, device="cpu", train_eval_size=0)
    d = cfg["distill"]
    d.update(teacher=teacher, grad_ratio=ratio, spectral_norm="fro")
    if method == "spectral":
        d.update(spectral=2, spectral_weight="auto")
    else:
        d.update(method=method, projection="inverted", weight="auto")
    with tempfile.TemporaryDirectory() as tmp:
        t = Trainer(cfg, tmp, progress=False)
        t._calibrate_and_diagnose()
        diag = t.diagnostics
        t.sampler.set_epoch(1, 0)
        idx = list(t.sampler)  # epoch 1: (epoch, index) pairs, another order and augmentation than calibration's
        other = [t._to_device(default_collate([t.train_ds[i] for i in idx[j:j + 32]])) for j in range(0, len(idx), 32)]
        held_out = ratios(t._term_norms(other), t.model.weights())
    term = "spectral" if method == "spectral" else "distill"
    return {"init": init, "method": method, "teacher": teacher, "ratio_at_w1": diag["ratio_at_weight_1"][term],
            "auto_weight": diag["weights"][term], "target": ratio, "ratio_auto_other_batches": held_out[term]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="benchmarks/strength/results/strength.json")
    ap.add_argument("--ratio", type=float, default=0.3)
    a = ap.parse_args()
    torch.set_num_threads(1)
    rows = []
    for init in ("imagenet", "none"):
        for method, teacher in CELLS:
            r = measure(init, method, teacher, a.ratio)
            rows.append(r)
            print(f"{init:9s} {method:9s} ratio@w=1 {r['ratio_at_w1']:.4f}  auto w {r['auto_weight']:.4g}  "
                  f"ratio@auto on other batches {r['ratio_auto_other_batches']:.3f} (target {a.ratio})", flush=True)
    with open(a.out, "w") as f:
        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
