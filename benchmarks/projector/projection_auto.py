"""``--projection auto`` against the depth verdicts of benchmarks/claims/claims.md (issue 24).

For each teacher whose better projection regime C decided (or pointed at), the choice ``auto`` makes
at step 0 with regime C's recipe (MobileNetV2 ImageNet student, 96x128, 64 scenes, batch 32, the
calibration batches of epoch 0), for training seeds 0-4: the debiased linear CKA of Z_s and Z_t, the
choice, and the held-out least-squares fits recorded beside it.  No training step is taken: building
the Trainer makes the choice.

    python benchmarks/projector/projection_auto.py --depth-teacher WORK/teacher-depth/best.pt \
        --out benchmarks/projector/results/projection_auto.json
    python benchmarks/projector/projection_auto.py --regime-m --out benchmarks/projector/results/projection_auto_m.json

``--regime-m``: the same rule (unchanged) against regime M's verdict (claims.md: random ViT-Ti/16, 256 scenes,
each seed its own; the traditional projection did better, resolved), with regime M's recipe at step 0.
"""

from __future__ import annotations

import argparse
import json
import tempfile

from edgekd.config import load_profile
from edgekd.train.loop import Trainer

# claims.md, regime C (FitNets, 5 paired seeds; Lite0 10): the projection that did better, and how firmly.
VERDICTS = {
    "random": ("inverted", "+0.0044 [-0.0001, +0.0088], not resolved"),
    "efficientnet_lite0": ("inverted", "+0.0071 [+0.0021, +0.0122] at 10 seeds, held"),
    "depth": ("traditional", "+0.0046 [+0.0021, +0.0071], held"),
}


# claims.md, regime M (5 paired seeds, each its own scenes): inverted - traditional
VERDICT_M = ("traditional", "-0.0030 [-0.0053, -0.0008] (inverted - traditional), resolved: traditional better")


def choice(teacher: str, weights: str, seed: int, train_size: int = 64, data_seed: int | None = None) -> dict:
    cfg = load_profile("jetson")
    cfg["model"].update(student="mobilenetv2_100", student_weights="imagenet")
    cfg["data"]["image_size"] = [96, 128]
    if data_seed is not None:
        cfg["data"]["seed"] = data_seed  # compare --vary-scenes: the seed's own scenes
    cfg["train"].update(train_size=train_size, val_size=32, batch_size=32, workers=0, device="cpu", train_eval_size=0, seed=seed)
    cfg["distill"].update(teacher=teacher, teacher_weights=weights, method="fitnet", projection="auto", weight="auto", fit_images=0)
    with tempfile.TemporaryDirectory() as tmp:
        return Trainer(cfg, tmp, progress=False).projection_choice


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depth-teacher", help="the same-task depth teacher's best.pt (claims_c.sh WORK teacher)")
    ap.add_argument("--regime-m", action="store_true", help="regime M's teacher and recipe instead")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    if a.regime_m:
        teachers, verdicts, size, vary = [("random:vit_tiny_patch16_224", "random:vit_tiny_patch16_224", "")], \
            {"random:vit_tiny_patch16_224": VERDICT_M}, 256, True
    elif a.depth_teacher:
        teachers = [("random", "random", ""), ("efficientnet_lite0", "efficientnet_lite0", "imagenet"), ("depth", a.depth_teacher, "")]
        verdicts, size, vary = VERDICTS, 64, False
    else:
        ap.error("give --depth-teacher FILE or --regime-m")
    rows = []
    for name, spec, weights in teachers:
        better, verdict = verdicts[name]
        for seed in range(a.seeds):
            c = choice(spec, weights, seed, size, seed if vary else None)
            rows.append({"teacher": name, "seed": seed, "better": better, "verdict": verdict, **c})
            print(f"{name:20s} seed {seed}: CKA {c['cka']:.3f} -> {c['chosen']:11s} (better in claims.md: {better}; "
                  f"held-out R^2 inverted {c['heldout_r2_inverted']:.3f}, traditional {c['heldout_r2_traditional']:.3f})", flush=True)
    agree = sum(r["chosen"] == r["better"] for r in rows)
    print(f"auto picked the better projection in {agree} of {len(rows)} (teacher, seed) cases")
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"rows": rows, "agree": agree, "cases": len(rows)}, f, indent=1)


if __name__ == "__main__":
    main()
