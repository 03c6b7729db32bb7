"""Issue 24's second CPU grid: colourisation in regime C and depth in regime M (no memorisation), as one queue.

    python benchmarks/claims/claims_queue.py EDGEKD WORK --stop 06:25            # run (resumable: call it again)
    python benchmarks/claims/claims_queue.py EDGEKD WORK --merge                 # WORK/PLAN/grid for the verdict scripts
    python benchmarks/claims/claims_queue.py EDGEKD WORK --dry-run               # print the queue and what is done
    python benchmarks/claims/claims_queue.py EDGEKD WORK --plans depth_m --restore benchmarks/claims/results/claims_cpu_m \
        --stop 16:10                                                             # session 6: regime M seeds 2-4 only

The design (cells, seeds, ratios, the pilot rule, the stop time) is fixed in benchmarks/claims/claims_tasks.md
(colourisation) and benchmarks/claims/claims.md (regime M) before any test run.  Two single-thread workers
take the next runnable item in priority order: colourisation's pilot (held-out seed 100), its grid
seed-major (seeds 0-4), then regime M seed-major.  An item is one ``edgekd compare --seeds k`` call on
the cell's own folder ``WORK/PLAN/cells/CELL`` (it trains seed k-1; a run folder holds one writer, so
two workers never share a folder), runnable when the cell's seed k-2 is done and, for a distillation
cell, the pilot rule has chosen its ratio.  No item starts after ``--stop`` (UTC); what finished by
then is what the pages report.  Every call's command and output go to ``WORK/logs/``; ``WORK/queue.log``
has a stamped line per start and end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import threading
import time
from pathlib import Path

COMMON = ["--profile", "jetson", "--student", "mobilenetv2_100", "--student-weights", "imagenet", "--image-size", "96", "128",
          "--val-size", "256", "--batch-size", "32", "--lr", "1e-3", "--workers", "0", "--device", "cpu",
          "--set", "train.eval_every=0", "--set", "train.train_eval_size=64"]
# Regime C of claims.md with the task switched (claims_tasks.md): 64 scenes, 40 epochs = 80 steps.
REGIME_C = [*COMMON, "--task", "colourisation", "--train-size", "64", "--epochs", "40", "--set", "train.warmup_steps=8",
            "--set", "distill.spectral_norm=fro", "--set", "distill.spectral_scope=batch"]
# Regime M of claims.md: 256 scenes, 40 epochs = 320 steps (4x regime C's 80), a random ViT-Ti/16 (192 channels:
# 32 x 3 x 4 = 384 rows a batch = 2x its channels, 3072 distinct training rows = 16x), projector shrinkage 0.01,
# the ratio regime C chose for depth (0.3) fixed before.
TEACHER_M = "random:vit_tiny_patch16_224"
REGIME_M = [*COMMON, "--task", "depth", "--train-size", "256", "--epochs", "40", "--set", "train.warmup_steps=32",
            "--set", "distill.projector_shrinkage=0.01"]
SEEDS = 5
PILOT_SEED = 100


def colour_cells():
    """(cell id, compare args, pilot prefix whose choice sets the ratio or None)."""
    fit = ["--methods", "fitnet", "--teachers", "random", "--distill-weight", "auto"]
    return [("none", ["--teachers", "none"], None),
            ("random-fitnet-inverted", [*fit, "--projections", "inverted"], "fitnet"),
            ("random-fitnet-traditional", [*fit, "--projections", "traditional"], "fitnet"),
            ("none-r2", ["--teachers", "none", "--spectral", "2", "--set", "distill.spectral_weight=auto"], "spectral")]


def lite_cells(choice: str):
    """The ImageNet EfficientNet-Lite0 cells of claims_tasks.md, at the ratio the task's pilot chose for FitNets."""
    fit = ["--methods", "fitnet", "--teachers", "efficientnet_lite0", "--teacher-weights", "efficientnet_lite0=imagenet",
           "--distill-weight", "auto", "--set", f"distill.grad_ratio={choice}"]
    return [(f"efficientnet_lite0-fitnet-{p}", [*fit, "--projections", p], None) for p in ("inverted", "traditional")]


def m_cells():
    fit = ["--methods", "fitnet", "--teachers", TEACHER_M, "--distill-weight", "auto", "--set", "distill.grad_ratio=0.3"]
    return [("none", ["--teachers", "none"], None),
            ("random-vit_tiny_patch16_224-fitnet-inverted", [*fit, "--projections", "inverted"], None),
            ("random-vit_tiny_patch16_224-fitnet-traditional", [*fit, "--projections", "traditional"], None)]


# Colourisation's pilot (claims_tasks.md): (name, ratio or "", distill args)
PILOTS = [("none", "", ["--teacher", "none", "--set", "train.eval_every=5"]),
          ("fitnet", "0.3", ["--teacher", "random", "--distill-weight", "auto"]),
          ("fitnet", "1.0", ["--teacher", "random", "--distill-weight", "auto"]),
          ("spectral", "0.1", ["--teacher", "none", "--spectral", "2", "--spectral-weight", "auto"]),
          ("spectral", "0.3", ["--teacher", "none", "--spectral", "2", "--spectral-weight", "auto"])]
CHOICES = {"fitnet": ("0.3", "1.0"), "spectral": ("0.1", "0.3")}


class Item:
    def __init__(self, name, plan, out, args, needs=(), choice=None):
        self.name, self.plan, self.out, self.args, self.needs, self.choice = name, plan, out, args, list(needs), choice
        self.state = "todo"

    def done(self) -> bool:
        return (self.out / "summary.json").exists()


# Session 6's Lite0 plans (claims_tasks.md, "EfficientNet-Lite0 cells"): each task's cells beside the kept runs of
# its grid, from that grid's frozen commit: segmentation's (c5548aa) drew one set of scenes for every seed,
# colourisation's (6e1c9ec) a set per seed (--vary-scenes).
LITE_PLANS = {"lite_segmentation": ("segmentation", []), "lite_colourisation": ("colourisation", ["--vary-scenes"])}
PLANS = ("colourisation", "depth_m", *LITE_PLANS)


def _lite_items(work: Path, plan: str) -> list[Item]:
    task, extra = LITE_PLANS[plan]
    regime = [a if a != "colourisation" else task for a in REGIME_C]
    choice = json.loads((work / plan / "pilot" / "choice-fitnet.json").read_text())["chosen"]  # put back by --restore
    items = []
    for seed in range(SEEDS):
        for cid, args, _ in lite_cells(choice):
            folder = work / plan / "cells" / cid
            needs = [f"{plan} {cid} seed{seed - 1}"] if seed else []
            items.append(Item(f"{plan} {cid} seed{seed}", plan, folder / "runs" / cid / f"seed{seed}",
                              ["compare", *regime, *args, *extra, "--seeds", str(seed + 1), "--quiet", "--out", str(folder)], needs))
    return items


def build_queue(work: Path, plans=("colourisation", "depth_m")) -> list[Item]:
    items, pilot = [], work / "colourisation" / "pilot"
    for name, r, args in PILOTS:
        out = pilot / (f"{name}-r{r}" if r else name)
        ratio = ["--set", f"distill.grad_ratio={r}"] if r else []
        items.append(Item(f"pilot {out.name}", "colourisation", out,
                          ["distill", *REGIME_C, *args, *ratio, "--seed", str(PILOT_SEED), "--set", f"data.seed={PILOT_SEED}",
                           "--quiet", "--out", str(out), "--overwrite"]))
    for plan, cells, regime in (("colourisation", colour_cells(), REGIME_C), ("depth_m", m_cells(), REGIME_M)):
        if plan not in plans:
            continue
        for seed in range(SEEDS):
            for cid, args, prefix in cells:
                folder = work / plan / "cells" / cid
                needs = [f"{plan} {cid} seed{seed - 1}"] if seed else []
                needs += [f"pilot {prefix}-r{r}" for r in CHOICES[prefix]] if prefix else []
                items.append(Item(f"{plan} {cid} seed{seed}", plan, folder / "runs" / cid / f"seed{seed}",
                                  ["compare", *regime, *args, "--vary-scenes", "--seeds", str(seed + 1), "--quiet", "--out", str(folder)],
                                  needs, choice=prefix))
    for plan in plans:
        if plan in LITE_PLANS:
            items += _lite_items(work, plan)
    return [i for i in items if i.plan in plans]


def restore(work: Path, plan: str, kept: Path) -> None:
    """Put the finished runs kept in the repository (KEPT/runs/CELL/seedN: summary, config, metrics, diagnostics, the
    spectrum's last row) back in WORK/PLAN/cells/CELL/runs/CELL/seedN, so that a new machine's queue resumes after them:
    compare skips a run whose summary.json exists once its config.json matches the recipe.  The spectrum's last row
    becomes a one-row spectrum.jsonl (what the verdict reads); the per-epoch spectra of those runs were not kept."""
    import shutil

    rows = {(r["id"], r["seed"]): r for r in map(json.loads, (kept / "results.jsonl").read_text().splitlines())}
    for run in sorted(kept.glob("runs/*/seed*")):
        cell = run.parent.name
        dst = work / plan / "cells" / cell / "runs" / cell / run.name
        if (dst / "summary.json").exists():
            continue
        dst.mkdir(parents=True, exist_ok=True)
        for f in run.iterdir():
            if f.name == "spectrum_final.json":
                (dst / "spectrum.jsonl").write_text(f.read_text())
            else:
                shutil.copy(f, dst / f.name)
        # its results row as first written (commit, command, run minutes: a copy's file times are not the run's)
        (dst / "kept_row.json").write_text(json.dumps(rows[(cell, int(run.name[4:]))]) + "\n")
        (dst / "RESTORED").write_text(f"copied from {kept}/runs/{cell}/{run.name}; the run itself is not repeated\n")
        print(f"restored {dst}")
    if (kept / "pilot").is_dir() and not (work / plan / "pilot").exists():  # the pilot's runs and its choice-*.json
        shutil.copytree(kept / "pilot", work / plan / "pilot")


def choose(work: Path, prefix: str) -> str:
    """The pilot rule (claims_tasks.md): the ratio with the best validation PSNR on seed 100; a tie: the smaller."""
    pilot = work / "colourisation" / "pilot"
    vals = {r: json.loads((pilot / f"{prefix}-r{r}" / "summary.json").read_text())["final"]["psnr"] for r in CHOICES[prefix]}
    best = max(CHOICES[prefix], key=lambda r: (vals[r], -float(r)))
    path = pilot / f"choice-{prefix}.json"
    if not path.exists():
        path.write_text(json.dumps({"metric": "psnr", "seed": PILOT_SEED, "values": vals, "chosen": best}, indent=1))
    return json.loads(path.read_text())["chosen"]


def stamp(work: Path, text: str) -> None:
    line = f"{dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')} {text}"
    print(line, flush=True)
    with open(work / "queue.log", "a") as f:
        f.write(line + "\n")


class Queue:
    def __init__(self, edgekd: Path, work: Path, stop: dt.datetime, plans=("colourisation", "depth_m")):
        self.edgekd, self.work, self.stop = edgekd, work, stop
        self.items = build_queue(work, plans)
        self.by_name = {i.name: i for i in self.items}
        self.lock = threading.Lock()
        for i in self.items:
            if i.done():
                i.state = "done"

    def _ready(self, item: Item) -> bool:
        return item.state == "todo" and all(self.by_name[n].state == "done" for n in item.needs)

    def take(self) -> Item | None:
        """The first runnable item; None when nothing is left or the stop time has passed."""
        while True:
            with self.lock:
                if dt.datetime.now(dt.timezone.utc) >= self.stop:
                    return None
                if not any(i.state in ("todo", "running") for i in self.items):
                    return None
                for item in self.items:
                    if self._ready(item):
                        item.state = "running"
                        return item
                if not any(i.state == "running" for i in self.items):
                    return None  # what is left waits on a failed item
            time.sleep(10)

    def run(self, item: Item) -> None:
        args = list(item.args)
        if item.choice:
            args += ["--set", f"distill.grad_ratio={choose(self.work, item.choice)}"]
        log = self.work / "logs" / (item.name.replace(" ", "_") + ".log")
        log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": str(self.edgekd), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1",
               "EDGEKD_CACHE": str(self.work / "scene_cache")}
        stamp(self.work, f"start {item.name}")
        with open(log, "w") as f:
            f.write("python -m edgekd " + " ".join(args) + "\n")
            f.flush()
            rc = subprocess.call(["python", "-m", "edgekd", *args], cwd=self.edgekd, env=env, stdout=f, stderr=subprocess.STDOUT)
        ok = rc == 0 and item.done()
        with self.lock:
            item.state = "done" if ok else "failed"
        stamp(self.work, f"end {item.name} rc={rc}{'' if ok else ' FAILED'}")

    def worker(self) -> None:
        while (item := self.take()) is not None:
            self.run(item)


def merge(work: Path) -> None:
    """WORK/PLAN/grid: one compare folder (compare.json + runs/CELL links) over the cell folders, for the verdict scripts."""
    for plan in PLANS:
        cells_dir = work / plan / "cells"
        if not cells_dir.exists():
            continue
        grid = work / plan / "grid"
        (grid / "runs").mkdir(parents=True, exist_ok=True)
        cells, seeds, config = [], set(), None
        for folder in sorted(p for p in cells_dir.iterdir() if p.is_dir()):
            meta = _cell_meta(folder)
            if meta is None:
                continue
            config = config or meta["config"]
            cells += meta["cells"]
            seeds |= set(meta["seeds"])
            for c in meta["cells"]:
                link = grid / "runs" / c["id"]
                if not link.exists():
                    link.symlink_to((folder / "runs" / c["id"]).resolve())
        (grid / "compare.json").write_text(json.dumps({"config": config, "cells": cells, "seeds": sorted(seeds)}, indent=1))
        print(f"{grid}: {len(cells)} cells, seeds {sorted(seeds)}")


def _cell_meta(folder: Path) -> dict | None:
    """A cell folder's compare.json; for a folder of restored runs only, the same built from their kept rows."""
    if (folder / "compare.json").exists():
        return json.loads((folder / "compare.json").read_text())
    rows = [json.loads(p.read_text()) for p in sorted(folder.glob("runs/*/seed*/kept_row.json"))]
    if not rows:
        return None
    keys = ("id", "label", "teacher", "method", "projection", "spectral")
    cells = list({r["id"]: {k: r[k] for k in keys} for r in rows}.values())
    return {"config": None, "cells": cells, "seeds": sorted({r["seed"] for r in rows})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("edgekd", type=Path, help="the (frozen) edgekd checkout to run")
    ap.add_argument("work", type=Path)
    ap.add_argument("--stop", default="06:25", help="UTC HH:MM today: no item starts after it")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--merge", action="store_true")
    ap.add_argument("--plans", nargs="+", default=["colourisation", "depth_m"], choices=list(PLANS),
                    help="the plans to queue (default both)")
    ap.add_argument("--restore", type=Path, help="a results folder whose runs/ to put back first (one plan only)")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    if a.merge:
        return merge(a.work)
    if a.restore:
        if len(a.plans) != 1:
            ap.error("--restore needs exactly one --plans")
        restore(a.work.resolve(), a.plans[0], a.restore.resolve())
    h, m = map(int, a.stop.split(":"))
    stop = dt.datetime.now(dt.timezone.utc).replace(hour=h, minute=m, second=0, microsecond=0)
    q = Queue(a.edgekd.resolve(), a.work.resolve(), stop, tuple(a.plans))
    if a.dry_run:
        for i in q.items:
            print(f"{i.state:5} {i.name}  needs {i.needs}")
        return
    stamp(a.work, f"queue: {sum(i.state == 'todo' for i in q.items)} of {len(q.items)} items to run, stop {stop:%H:%M} UTC, "
                  f"edgekd {a.edgekd}")
    threads = [threading.Thread(target=q.worker) for _ in range(a.workers)]
    for t in threads:
        t.start()
        time.sleep(5)
    for t in threads:
        t.join()
    stamp(a.work, "queue: " + ", ".join(f"{s} {sum(i.state == s for i in q.items)}" for s in ("done", "failed", "todo")))


if __name__ == "__main__":
    main()
