"""``edgekd compare``: the paper's experiment (Table 1) as one command, with seeds and error bars.

Every cell of the grid (teacher x method x projection x spectral rank) is
trained ``seeds`` times with the same budget and the same data; finished runs
are skipped and interrupted ones resumed, so the command can be stopped and
restarted.  Results go to ``results.jsonl`` (one line per run) and the tables
to ``table.md`` / ``table.csv``: mean +- std over seeds, the change in % over
the no-teacher baseline, the best cell per teacher marked.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import re
from pathlib import Path

import numpy as np

from ..errors import EdgekdError
from ..fileio import atomic_write_json, atomic_write_text

# Metrics shown in the table per task (the primary one first), as in the paper's Table 1.
TABLE_METRICS = {"depth": ("d1", "abs_rel", "rmse"), "segmentation": ("miou", "pixel_acc"), "classification": ("top1",),
                 "colourisation": ("psnr", "ssim"), "translation": ("psnr", "ssim")}
LOWER_IS_BETTER = {"abs_rel", "sq_rel", "rmse", "rmse_log", "log10"}


def teacher_label(spec: str) -> str:
    """A short, file-safe name: ``random``, ``random-resnet18``, ``seg`` (from runs/seg/best.pt), ``mobilenetv2_100``."""
    if spec in ("none", "random"):
        return spec
    if spec.startswith("random:"):
        return "random-" + spec.split(":", 1)[1]
    p = Path(spec)
    if p.suffix in (".pt", ".pth") and p.parent.name:
        return re.sub(r"[^\w.-]", "_", p.parent.name)
    return re.sub(r"[^\w.-]", "_", spec)


def grid_cells(teachers, methods, projections, spectral) -> list[dict]:
    """The cells: without a teacher, one per spectral rank; with one, methods x projections x ranks."""
    cells = []
    for t in teachers:
        if t == "none":
            for r in spectral:
                cells.append({"teacher": "none", "method": None, "projection": None, "spectral": r})
        else:
            for m in methods:
                for p in projections:
                    for r in spectral:
                        cells.append({"teacher": t, "method": m, "projection": p, "spectral": r})
    for c in cells:
        c["label"] = teacher_label(c["teacher"])
        c["id"] = c["label"] if c["teacher"] == "none" else f"{c['label']}-{c['method']}-{c['projection']}"
        c["id"] += f"-r{c['spectral']}" if c["spectral"] else ""
    return cells


def run_grid(base_cfg: dict, cells: list[dict], seeds: list[int], out: Path, teacher_weights: dict | None = None,
             log=print, progress=True) -> list[dict]:
    """Train every (cell, seed) not yet finished; return all results."""
    from tqdm.auto import tqdm

    from ..train.loop import Trainer

    out.mkdir(parents=True, exist_ok=True)
    meta_path = out / "compare.json"
    known, known_seeds = [], []
    if meta_path.exists():  # a restart, or more cells added to the same comparison: keep the earlier ones
        old = json.loads(meta_path.read_text())
        known, known_seeds = old["cells"], old["seeds"]
    ids = {c["id"] for c in cells}
    merged = [c for c in known if c["id"] not in ids] + cells
    atomic_write_json(meta_path, {"config": base_cfg, "cells": merged, "seeds": sorted(set(known_seeds) | set(seeds))})
    # Seed-major order: an interrupted grid still has every cell at its first seeds.
    todo = [(c, s) for s in seeds for c in cells]
    bar = tqdm(total=len(todo), desc="grid", unit="run", disable=not progress, dynamic_ncols=True)
    for cell, seed in todo:
        run_dir = out / "runs" / cell["id"] / f"seed{seed}"
        if (run_dir / "summary.json").exists():
            bar.update(1)
            continue
        cfg = copy.deepcopy(base_cfg)
        d = cfg["distill"]
        d["teacher"] = cell["teacher"]
        d["teacher_weights"] = (teacher_weights or {}).get(cell["teacher"], "")
        if cell["method"]:
            d["method"], d["projection"] = cell["method"], cell["projection"]
        d["spectral"] = cell["spectral"]
        cfg["train"]["seed"] = seed
        resume = (run_dir / "last.pt").exists()
        trainer = Trainer(cfg, run_dir, resume=resume, progress=False)
        summary = trainer.run()
        bar.update(1)
        key = trainer.task.primary_metric
        bar.write(f"{cell['id']} seed {seed}: {key} {summary['final'].get(key, float('nan')):.4f}")
        del trainer  # a captured CUDA graph holds its memory pool until the trainer is collected
        _free_memory()
    bar.close()
    return collect(out)


def _free_memory():
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def collect(out: Path) -> list[dict]:
    """Results of every finished run under ``out/runs`` (final-epoch validation metrics)."""
    meta = json.loads((out / "compare.json").read_text())
    rows = []
    for cell in meta["cells"]:
        for seed in meta["seeds"]:
            run_dir = out / "runs" / cell["id"] / f"seed{seed}"
            if not (run_dir / "summary.json").exists():
                continue
            final = json.loads((run_dir / "summary.json").read_text())["final"]
            rows.append({**{k: cell[k] for k in ("id", "label", "teacher", "method", "projection", "spectral")},
                         "seed": seed, "metrics": final, "run": str(run_dir)})
    atomic_write_text(out / "results.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    return rows


def summarise(rows: list[dict], task: str) -> dict:
    """{cell id: {metric: (mean, std, n)}} and the row/column layout of the table."""
    by_cell: dict[str, list[dict]] = {}
    info = {}
    for r in rows:
        by_cell.setdefault(r["id"], []).append(r["metrics"])
        info[r["id"]] = r
    stats = {}
    for cid, ms in by_cell.items():
        stats[cid] = {}
        for k in ms[0]:
            vals = np.array([m[k] for m in ms if isinstance(m.get(k), (int, float))], np.float64)
            if vals.size:
                stats[cid][k] = (float(vals.mean()), float(vals.std(ddof=1)) if vals.size > 1 else 0.0, int(vals.size))
    return {"stats": stats, "info": info, "metrics": TABLE_METRICS.get(task, ())}


def _fmt(mean, std, k):
    p = 3 if k not in ("psnr",) else 2
    return f"{mean:.{p}f} ± {std:.{p}f}"


def table(rows: list[dict], task: str) -> tuple[str, str]:
    """Markdown and CSV tables like the paper's Table 1 (rows: method/projection; columns: teachers)."""
    s = summarise(rows, task)
    stats, info, metrics = s["stats"], s["info"], s["metrics"]
    if not stats:
        raise EdgekdError("no finished runs to tabulate yet; run edgekd compare first")
    primary = metrics[0]
    lower = primary in LOWER_IS_BETTER
    baseline = next((stats[c][primary][0] for c, i in info.items() if i["teacher"] == "none" and not i["spectral"] and primary in stats[c]), None)
    teachers = list(dict.fromkeys(i["label"] for i in info.values() if i["teacher"] != "none"))
    row_keys = list(dict.fromkeys((i["method"], i["projection"], i["spectral"]) for i in info.values() if i["teacher"] != "none"))
    # best cell per teacher (on the primary metric's mean)
    best = {}
    for t in teachers:
        cands = [(stats[c][primary][0], c) for c, i in info.items() if i["label"] == t and primary in stats[c]]
        if cands:
            best[t] = (min if lower else max)(cands)[1]

    def cell_text(cid, md=True):
        st = stats.get(cid, {})
        if primary not in st:
            return "-"
        parts = [_fmt(*st[k][:2], k) for k in metrics if k in st]
        text = " / ".join(parts)
        if baseline:
            gain = (baseline - st[primary][0]) / baseline if lower else (st[primary][0] - baseline) / baseline
            text += f" ({gain * 100:+.1f}%)"
        n = st[primary][2]
        if md and any(cid == b for b in best.values()):
            text = f"**{text}**"
        return text + (f" n={n}" if n < 2 else "")

    header = " / ".join(metrics)
    md = [f"Metrics per cell: {header} (mean ± std over seeds; in brackets the change of {primary} over no teacher; best per teacher in bold).", ""]
    none_rows = [(c, i) for c, i in info.items() if i["teacher"] == "none"]
    for c, i in sorted(none_rows, key=lambda x: x[1]["spectral"]):
        name = "no teacher" if not i["spectral"] else f"no teacher + spectral r={i['spectral']}"
        md.append(f"* {name}: {cell_text(c)}")
    md += ["", "| method | projection | " + " | ".join(teachers) + " |", "|---|---|" + "---|" * len(teachers)]
    csv_buf = io.StringIO()
    w = csv.writer(csv_buf)
    w.writerow(["teacher", "method", "projection", "spectral", "seeds"] + [f"{k}_{s}" for k in metrics for s in ("mean", "std")])
    for c, i in info.items():
        st = stats[c]
        w.writerow([i["label"], i["method"] or "", i["projection"] or "", i["spectral"], st[primary][2] if primary in st else 0]
                   + [x for k in metrics for x in (st.get(k, (None, None))[:2])])
    for method, proj, r in row_keys:
        cells = []
        for t in teachers:
            cid = next((c for c, i in info.items() if i["label"] == t and (i["method"], i["projection"], i["spectral"]) == (method, proj, r)), None)
            cells.append(cell_text(cid) if cid else "-")
        md.append(f"| {method}{f' + spectral {r}' if r else ''} | {proj} | " + " | ".join(cells) + " |")
    return "\n".join(md) + "\n", csv_buf.getvalue()


def write_tables(out: Path, rows: list[dict], task: str) -> tuple[Path, Path]:
    md, csv_text = table(rows, task)
    return atomic_write_text(out / "table.md", md), atomic_write_text(out / "table.csv", csv_text)

