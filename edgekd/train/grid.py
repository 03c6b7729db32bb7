"""``edgekd compare``: running the grid (teacher x method x projection x spectral rank) over seeds.

Every cell is trained ``seeds`` times with the same budget and the same data; finished runs are
skipped and interrupted ones resumed, so the command can be stopped and restarted.  The grid's
cells and seeds are kept in ``OUT/compare.json``, each run in ``OUT/runs/<cell>/seed<N>``; the
results (``results.jsonl``), tables and differences are :mod:`edgekd.report.compare`'s; the command that runs
the grid and then writes them is :mod:`edgekd.commands.compare`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

from ..config import RunConfig
from ..errors import EdgekdError
from ..fileio import atomic_write_json


def split_list(text: str, cast=str) -> list:
    """A comma list of an option (``"none, random"`` -> ``["none", "random"]``)."""
    return [cast(x.strip()) for x in text.split(",") if x.strip()]


@dataclass
class GridSpec:
    """What ``edgekd compare`` was asked to train."""

    teachers: list[str]
    weights: dict[str, str]  # teacher name -> local weights file
    methods: list[str]
    projections: list[str]
    ranks: list[int]
    seeds: int
    vary_scenes: bool = False  # each seed also draws its own scenes (data.seed = the seed)


# Options and keys compare sets itself per cell and seed: a value given for them would be ignored.
GRID_SET = {"train.seed": "--seeds N (each cell runs seeds 0..N-1)", "distill.teacher": "--teachers", "distill.method": "--methods",
            "distill.projection": "--projections", "distill.spectral": "--spectral"}


def refuse_grid_set(seed: int | None, sets=(), vary_scenes: bool = False) -> None:
    """``compare --seed 5`` (or --set train.seed=5; --set data.seed with --vary-scenes) would be ignored: refuse it
    and name what sets it."""
    if seed is not None:
        raise EdgekdError(f"compare does not use --seed {seed}: {GRID_SET['train.seed']}; drop --seed")
    for item in sets or ():
        key = item.partition("=")[0].strip()
        if key in GRID_SET:
            raise EdgekdError(f"compare sets {key} itself per cell (use {GRID_SET[key]}); drop --set {item}")
        if key == "data.seed" and vary_scenes:
            raise EdgekdError(f"compare --vary-scenes sets {key} itself per seed; drop --set {item} or --vary-scenes")


def parse_grid(teachers: str, teacher_weight_map, methods: str, projections: str, spectral_ranks: str, seeds: int) -> GridSpec:
    """The options of ``edgekd compare`` (comma lists), checked, with a one-line error naming the bad value."""
    from ..distill.registry import list_distances, list_projections

    methods_known, projections_known = list_distances(), list_projections()
    weights = _teacher_weights(split_list(teachers), teacher_weight_map)
    method_list, projection_list = split_list(methods), split_list(projections)
    for m in method_list:
        if m not in methods_known:
            raise EdgekdError(f"unknown method {m!r} in --methods; use {', '.join(methods_known)}")
    for p in projection_list:
        if p not in projections_known:
            raise EdgekdError(f"unknown projection {p!r} in --projections; use {', '.join(projections_known)}")
    try:
        ranks = split_list(spectral_ranks, int)
    except ValueError:
        raise EdgekdError(f"--spectral {spectral_ranks!r} must be a comma list of integers, e.g. 0,2") from None
    if seeds < 1:
        raise EdgekdError("--seeds must be at least 1")
    if any(r < 0 for r in ranks):
        raise EdgekdError(f"--spectral {spectral_ranks!r}: a rank is at least 0 (0 = off)")
    return GridSpec(split_list(teachers), weights, method_list, projection_list, ranks, seeds)


def _teacher_weights(teachers: list, items) -> dict:
    """``--teacher-weights NAME=FILE`` (repeatable) as {NAME: FILE}; a bare FILE when one named teacher is compared."""
    named = [t for t in teachers if t not in ("none", "random") and not t.startswith("random:") and not t.endswith((".pt", ".pth"))]
    weights = {}
    for item in items:
        if "=" not in item:
            if len(named) != 1:
                raise EdgekdError(f"--teacher-weights {item!r} must look like NAME=FILE when {len(named)} named teachers are compared")
            item = f"{named[0]}={item}"
        name, _, f = item.partition("=")
        weights[name.strip()] = f.strip()
    return weights


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


# Keys a grid's runs may differ in without changing what they measure (where and how fast they ran), and the
# keys the grid sets itself per cell and seed.
_NOT_RECIPE = {("train", "workers"), ("train", "save_every_min"), ("train", "device"), ("model", "compile")}
_GRID_KEYS = {("distill", "teacher"), ("distill", "teacher_weights"), ("distill", "method"), ("distill", "projection"),
              ("distill", "spectral"), ("train", "seed")}
_RECIPE_SECTIONS = ("model", "data", "train", "distill")


def recipe_changes(old: dict, new: dict) -> list[str]:
    """``section.key (old -> new)`` for every recipe key in which two configs differ."""
    changed = []
    for sec in _RECIPE_SECTIONS:
        a, b = old.get(sec) or {}, new.get(sec) or {}
        for k in sorted(set(a) | set(b)):
            if (sec, k) not in _NOT_RECIPE | _GRID_KEYS and _norm(sec, k, a.get(k)) != _norm(sec, k, b.get(k)):
                changed.append(f"{sec}.{k} ({a.get(k)!r} -> {b.get(k)!r})")
    return changed


def _norm(section: str, key: str, value):
    """A data path as the absolute path it names (runs of an older edgekd stored it as given)."""
    if (section, key) == ("data", "data") and isinstance(value, str) and value != "synthetic" and Path(value).expanduser().exists():
        return str(Path(value).expanduser().resolve())
    return value


def check_recipe(out: Path, base_cfg: RunConfig | dict, cells: list[dict], seeds: list[int], restart: bool, teacher_weights=None, echo=print) -> None:
    """Refuse to merge runs of another recipe into ``out`` (naming the keys), or with ``restart`` remove them so the
    grid trains them again; cells of earlier calls that this call does not retrain leave the comparison."""
    import shutil

    base_cfg = RunConfig.coerce(base_cfg)
    stale, changes = [], []
    for cell in cells:
        for seed in seeds:
            run_dir = out / "runs" / cell["id"] / f"seed{seed}"
            try:
                saved = json.loads((run_dir / "config.json").read_text())
            except (OSError, ValueError):
                continue
            diff = recipe_changes(saved, cell_config(base_cfg, cell, seed, teacher_weights))
            if diff:
                stale.append(run_dir)
                changes = changes or diff
    old_meta = _read_meta(out)
    ids = {c["id"] for c in cells}
    others = [c for c in old_meta.get("cells", []) if c["id"] not in ids]
    meta_diff = recipe_changes(old_meta["config"], base_cfg.to_dict()) if old_meta.get("config") and others else []
    if not (stale or meta_diff):
        return
    if not restart:
        where = f"{len(stale)} runs of this grid" if stale else f"cells {', '.join(c['id'] for c in others)} of an earlier call"
        raise EdgekdError(f"{out} holds runs of another recipe: {', '.join(changes or meta_diff)} ({where}); the table would mix them: "
                          "use another --out, or add --restart to train this grid's cells again with this recipe")
    for run_dir in stale:
        shutil.rmtree(run_dir)
    echo(f"--restart: removed {len(stale)} runs of the old recipe; they are trained again")
    if meta_diff:
        old_meta["cells"] = [c for c in old_meta["cells"] if c["id"] in ids]
        atomic_write_json(out / "compare.json", old_meta)
        echo(f"--restart: cells {', '.join(c['id'] for c in others)} (old recipe) leave the comparison; their runs stay in {out / 'runs'}")


def _read_meta(out: Path) -> dict:
    try:
        return json.loads((out / "compare.json").read_text())
    except (OSError, ValueError):
        return {}


def run_grid(base_cfg: RunConfig | dict, cells: list[dict], seeds: list[int], out: Path, teacher_weights: dict | None = None,
             progress=True) -> None:
    """Train every (cell, seed) not yet finished (the results: :func:`edgekd.report.compare.collect` of ``out``)."""
    from tqdm.auto import tqdm

    from .loop import Trainer

    base_cfg = RunConfig.coerce(base_cfg)
    _write_meta(out, base_cfg, cells, seeds)
    # Seed-major order: an interrupted grid still has every cell at its first seeds.
    todo = [(c, s) for s in seeds for c in cells]
    bar = tqdm(total=len(todo), desc="grid", unit="run", disable=not progress, dynamic_ncols=True)
    for cell, seed in todo:
        run_dir = out / "runs" / cell["id"] / f"seed{seed}"
        if (run_dir / "summary.json").exists():
            bar.update(1)
            continue
        cfg = cell_run_config(base_cfg, cell, seed, teacher_weights)
        trainer = Trainer(cfg, run_dir, resume=(run_dir / "last.pt").exists(), progress=False)
        summary = trainer.run()
        bar.update(1)
        key = trainer.task.primary_metric
        bar.write(f"{cell['id']} seed {seed}: {key} {summary['final'].get(key, float('nan')):.4f}")
        del trainer  # a captured CUDA graph holds its memory pool until the trainer is collected
        _free_memory()
    bar.close()


def _write_meta(out: Path, base_cfg: RunConfig, cells: list[dict], seeds: list[int]) -> None:
    """OUT/compare.json: the config, and the cells and seeds of this and every earlier call on ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    meta_path = out / "compare.json"
    known, known_seeds = [], []
    if meta_path.exists():  # a restart, or more cells added to the same comparison: keep the earlier ones
        old = json.loads(meta_path.read_text())
        known, known_seeds = old["cells"], old["seeds"]
    ids = {c["id"] for c in cells}
    merged = [c for c in known if c["id"] not in ids] + cells
    atomic_write_json(meta_path, {"config": base_cfg.to_dict(), "cells": merged, "seeds": sorted(set(known_seeds) | set(seeds))})


def cell_run_config(base_cfg: RunConfig | dict, cell: dict, seed: int, teacher_weights: dict | None) -> RunConfig:
    """The resolved config of one run of the grid: the base with the cell's teacher, distance, projection, rank and seed."""
    base_cfg = RunConfig.coerce(base_cfg)
    d = {"teacher": cell["teacher"], "teacher_weights": (teacher_weights or {}).get(cell["teacher"], ""), "spectral": cell["spectral"]}
    if cell["method"]:
        d.update(method=cell["method"], projection=cell["projection"])
    return replace(base_cfg, distill=replace(base_cfg.distill, **d), train=replace(base_cfg.train, seed=seed),
                   # --vary-scenes: the intervals then cover the draw of scenes, not only initialisation and order
                   data=replace(base_cfg.data, seed=seed) if cell.get("vary_scenes") else base_cfg.data)


def cell_config(base_cfg: RunConfig | dict, cell: dict, seed: int, teacher_weights: dict | None) -> dict:
    """:func:`cell_run_config` as the dict a run's config.json holds (what the saved runs are compared with, and what
    scripts that edit a cell's config take: benchmarks/claims_gpu_run.py)."""
    return cell_run_config(base_cfg, cell, seed, teacher_weights).to_dict()


def _free_memory():
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
