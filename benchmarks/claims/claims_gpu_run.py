"""One piece of benchmarks/claims/claims_gpu.sh: write the grid's plan, or train one (cell, seed) of it.

The grid is laid out as ``edgekd compare`` lays it out (``GRID/compare.json``, ``GRID/runs/<cell>/seed<N>``),
so ``edgekd report GRID`` and ``benchmarks/claims/claims_c_verdicts.py GRID`` read it unchanged.

    python benchmarks/claims/claims_gpu_run.py plan GRID --data SCENES --teacher-ckpt WORK/teacher-depth/best.pt --seeds 5 [--toy]
    python benchmarks/claims/claims_gpu_run.py run GRID CELL SEED     # resumes an interrupted run, skips a finished one
    python benchmarks/claims/claims_gpu_run.py todo GRID SEEDS        # the (cell, seed) pairs not finished, seed-major
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# Regime C's strengths (chosen on held-out seed 100, benchmarks/strength/strength.md): distillation 0.3, spectral 0.1.
DISTILL_RATIO, SPECTRAL_RATIO = 0.3, 0.1
# The cells, in the order a seed runs them (claims 3, 4, 2, 1): the same-task teacher's last, it is trained first.
ORDER = ["none", "random-fitnet-inverted", "none-r2", "teacher-depth-fitnet-traditional", "teacher-depth-fitnet-inverted",
         "random-fitnet-traditional"]


def _commit() -> str:
    if os.environ.get("COMMIT"):
        return os.environ["COMMIT"]
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def plan(grid: Path, data: str, teacher_ckpt: str, toy: bool, device: str, seeds: int) -> None:
    from edgekd.config import load_profile
    from edgekd.fileio import atomic_write_json
    from edgekd.train.grid import grid_cells

    cfg = load_profile("jetson")  # 256x320, batch 16, 25 epochs, lr 1e-3: the paper's depth recipe
    cfg["model"]["student_weights"] = "imagenet"
    cfg["data"]["data"] = data
    cfg["train"].update(train_size=795, val_size=654, workers=1, device=device, eval_every=0, train_eval_size=64)
    cfg["distill"].update(method="fitnet", weight="auto", spectral_weight="auto", grad_ratio=DISTILL_RATIO,
                          spectral_norm="fro", spectral_scope="batch")
    if toy:  # CPU, seconds: the script's plumbing only
        cfg["data"]["image_size"] = [64, 64]
        cfg["train"].update(train_size=2, val_size=2, batch_size=2, epochs=1, max_steps=1, workers=0, train_eval_size=2)
        cfg["distill"]["teacher"] = "random:resnet18"
    random = "random:resnet18" if toy else "random"
    cells = grid_cells(["none", random, teacher_ckpt], ["fitnet"], ["inverted", "traditional"], [0])
    cells += grid_cells(["none"], [], [], [2])
    for c in cells:
        c["id"] = c["id"].replace("random-resnet18", "random")  # the toy's teacher keeps the real grid's cell names
        if c["spectral"]:
            c["set"] = {"grad_ratio": SPECTRAL_RATIO}
    cells.sort(key=lambda c: ORDER.index(c["id"]))
    grid.mkdir(parents=True, exist_ok=True)
    atomic_write_json(grid / "compare.json", {"config": cfg, "cells": cells, "seeds": list(range(seeds))})


def todo(grid: Path, seeds: int) -> None:
    meta = json.loads((grid / "compare.json").read_text())
    for seed in range(seeds):
        for c in meta["cells"]:
            if not (grid / "runs" / c["id"] / f"seed{seed}" / "summary.json").exists():
                print(c["id"], seed)


def run(grid: Path, cell_id: str, seed: int) -> None:
    from edgekd.fileio import append_jsonl
    from edgekd.train.grid import cell_config
    from edgekd.train.loop import Trainer

    meta = json.loads((grid / "compare.json").read_text())
    cell = next(c for c in meta["cells"] if c["id"] == cell_id)
    run_dir = grid / "runs" / cell_id / f"seed{seed}"
    if (run_dir / "summary.json").exists():
        return
    cfg = cell_config(meta["config"], cell, seed, None)
    cfg["distill"].update(cell.get("set", {}))
    t0 = time.monotonic()
    summary = Trainer(cfg, run_dir, resume=(run_dir / "last.pt").exists(), progress=False).run()
    # Results as they go: one line per finished run, with what made it.
    append_jsonl(grid / "progress.jsonl", {"cell": cell_id, "seed": seed, "d1": summary["final"].get("d1"), "seconds": time.monotonic() - t0,
                                           "commit": _commit(), "command": " ".join([sys.executable, *sys.argv])})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="what", required=True)
    p = sub.add_parser("plan")
    p.add_argument("grid", type=Path)
    p.add_argument("--data", required=True)
    p.add_argument("--teacher-ckpt", required=True)
    p.add_argument("--toy", action="store_true")
    p.add_argument("--device", default="cuda")
    p.add_argument("--seeds", type=int, default=5)
    t = sub.add_parser("todo")
    t.add_argument("grid", type=Path)
    t.add_argument("seeds", type=int)
    r = sub.add_parser("run")
    r.add_argument("grid", type=Path)
    r.add_argument("cell")
    r.add_argument("seed", type=int)
    a = ap.parse_args()
    if a.what == "plan":
        plan(a.grid, a.data, a.teacher_ckpt, a.toy, a.device, a.seeds)
    elif a.what == "todo":
        todo(a.grid, a.seeds)
    else:
        run(a.grid, a.cell, a.seed)


if __name__ == "__main__":
    main()
