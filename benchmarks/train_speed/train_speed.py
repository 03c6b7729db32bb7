"""Training throughput: student only vs + teacher vs + spectral vs both, eager and compiled.

Runs edgekd's own training step (``Trainer.step_fn``) on a fixed batch already on
the device, so the numbers measure the step, not the data pipeline.  Prints a
table of images/s and ratios against the student-only step of the same student
and mode, and writes JSON.

    python benchmarks/train_speed/train_speed.py                       # CPU: small sizes
    python benchmarks/train_speed/train_speed.py --device cuda         # GPU: batch 32 at 256x320, bf16, eager + CUDA graph
    python benchmarks/train_speed/train_speed.py --device cuda --modes off,graph,inductor
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
import traceback

import torch

from edgekd.config import load_profile
from edgekd.train.loop import Trainer

CONFIGS = {
    "student": {"teacher": "none", "spectral": 0},
    "+teacher": {"teacher": "random", "spectral": 0},
    "+spectral": {"teacher": "none", "spectral": 2},
    "+both": {"teacher": "random", "spectral": 2},
}


def build(student, cfg_name, mode, device, batch, size):
    c = CONFIGS[cfg_name]
    over = {
        "model": {"student": student, "task": "depth", "compile": mode},
        "data": {"image_size": list(size)},
        "distill": {"teacher": c["teacher"], "spectral": c["spectral"], "method": "fitnet", "projection": "inverted",
                    "teacher_arch": "vit_base_patch32_224"},
        "train": {"batch_size": batch, "train_size": batch, "val_size": 1, "device": device, "workers": 0, "augment": False},
    }
    cfg = load_profile("jetson", over)
    return Trainer(cfg, tempfile.mkdtemp(prefix="edgekd-speed-"), progress=False)


def measure(trainer, batch, size, warmup, steps):
    dev = trainer.device
    x = torch.randn(batch, 3, *size, device=dev).contiguous(memory_format=trainer.memory_format)
    y = torch.rand(batch, *size, device=dev) * 9 + 0.5
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        trainer.step_fn(x, y)
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        total, _ = trainer.step_fn(x, y)
    sync()
    dt = (time.perf_counter() - t0) / steps
    assert torch.isfinite(total).item()
    return dt


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--students", default="mobilenetv2_100,efficientnet_b0")
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--modes", default=None, help="compile modes: off,graph,inductor,reduce-overhead [cpu: off; cuda: off,graph]")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--image-size", type=int, nargs=2, default=None)
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--rounds", type=int, default=None, help="interleaved timing rounds [cpu 5, cuda 3]")
    ap.add_argument("--json", default="train_speed.json")
    a = ap.parse_args()
    cuda = a.device == "cuda"
    batch = a.batch or (32 if cuda else 4)
    size = tuple(a.image_size or ((256, 320) if cuda else (128, 160)))
    warmup = a.warmup or (15 if cuda else 3)
    steps = a.steps or (50 if cuda else 10)
    modes = (a.modes or ("off,graph" if cuda else "off")).split(",")
    a.rounds = a.rounds or (3 if cuda else 5)
    if cuda:
        torch.backends.cudnn.benchmark = True
    rows = []
    for student in a.students.split(","):
        for mode in modes:
            # Build every configuration first, then time them in interleaved rounds (median over
            # rounds): on a shared CPU the speed drifts more between minutes than the effects we measure.
            built, times = {}, {}
            for cfg_name in a.configs.split(","):
                try:
                    built[cfg_name] = build(student, cfg_name, mode, a.device, batch, size)
                    times[cfg_name] = []
                except Exception as e:  # report and go on: one failing mode must not hide the others
                    times[cfg_name] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
                    traceback.print_exc()
            for _ in range(a.rounds):
                for cfg_name, tr in built.items():
                    if isinstance(times[cfg_name], str):
                        continue
                    try:
                        times[cfg_name].append(measure(tr, batch, size, warmup, steps))
                    except Exception as e:
                        times[cfg_name] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
                        traceback.print_exc()
                warmup = 1  # later rounds need no long warm-up
            base = None
            for cfg_name in a.configs.split(","):
                t = times[cfg_name]
                err = t if isinstance(t, str) else None
                dt = None if err or not t else float(sorted(t)[len(t) // 2])
                if cfg_name == "student":
                    base = dt
                row = {"student": student, "mode": mode, "config": cfg_name, "ms_per_step": dt and dt * 1e3,
                       "images_per_s": dt and batch / dt, "ratio_vs_student": (base / dt) if (dt and base) else None,
                       "rounds_ms": None if err else [x * 1e3 for x in t], "error": err}
                rows.append(row)
                print(json.dumps(row), flush=True)
            warmup = a.warmup or (15 if cuda else 3)
            del built
            if cuda:
                torch.cuda.empty_cache()
    # compiled vs eager, student only
    for student in a.students.split(","):
        eager = next((r for r in rows if r["student"] == student and r["mode"] == "off" and r["config"] == "student"), None)
        for r in rows:
            if r["student"] == student and r["mode"] != "off" and eager and eager["ms_per_step"] and r["ms_per_step"]:
                r["speedup_vs_eager"] = eager["ms_per_step"] / r["ms_per_step"]
    env = {"torch": torch.__version__, "device": torch.cuda.get_device_name() if cuda else platform.processor() or platform.machine(),
           "threads": torch.get_num_threads(), "batch": batch, "image_size": list(size), "warmup": warmup, "steps": steps,
           "amp": "bf16" if cuda else "fp32", "rounds": a.rounds}
    print(f"\n{env}\n")
    print("| student | mode | config | ms/step | img/s | x student-only | x eager |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        f = lambda v, p=".2f": "-" if v is None else format(v, p)  # noqa: E731
        print(f"| {r['student']} | {r['mode']} | {r['config']} | {f(r['ms_per_step'])} | {f(r['images_per_s'], '.1f')} | "
              f"{f(r['ratio_vs_student'], '.3f')} | {f(r.get('speedup_vs_eager'), '.2f')} |" + (f" {r['error']}" if r["error"] else ""))
    with open(a.json, "w") as fh:
        json.dump({"env": env, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
