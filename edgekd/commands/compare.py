"""``edgekd compare``: check the whole grid (every teacher's files, the options compare sets itself), train it (train/grid.py),
then write and show its tables and differences (report/compare.py).

It stands above both: the training floor knows nothing of the report, the report only reads files.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import click


@dataclass
class CompareSettings:
    """What ``edgekd compare`` was asked: the recipe's options (as distill's) and the grid's comma lists."""

    options: dict
    teachers: str = "none,random"
    teacher_weight_map: tuple = ()
    methods: str = "fitnet"
    projections: str = "inverted,traditional"
    spectral_ranks: str = "0"
    seeds: int = 3
    vary_scenes: bool = False
    out: str = ""
    restart: bool = False
    quiet: bool = False


def compare(s: CompareSettings) -> None:
    """Refuse what compare would ignore or could not build, then train and tabulate the grid in ``s.out``."""
    from ..fileio import check_out_dir
    from ..models.teacher_kinds import check_grid_teachers, check_teacher_spec
    from ..run_lock import RunLock
    from ..train.grid import parse_grid, refuse_grid_set
    from ..train.stop import report_sigterm
    from ..train.threads import set_threads
    from .distill import resolve_config

    kw = s.options
    refuse_grid_set(kw.get("seed"), kw.get("sets"), s.vary_scenes)
    cfg = resolve_config({**kw, "teacher": None, "spectral": None})
    if kw.get("distill_weight") is not None:
        cfg = replace(cfg, distill=replace(cfg.distill, weight=kw["distill_weight"]))
    grid = parse_grid(s.teachers, s.teacher_weight_map, s.methods, s.projections, s.spectral_ranks, s.seeds)
    grid.vary_scenes = s.vary_scenes
    for t in grid.teachers:
        check_teacher_spec(t, grid.weights.get(t))
    check_grid_teachers(grid.teachers, grid.weights)
    out = check_out_dir(s.out)
    report_sigterm()
    with RunLock(out, "compare"):
        run_compare(cfg, grid, out, echo=click.echo, progress=not s.quiet, set_threads=lambda: set_threads(kw.get("threads")),
                    restart=s.restart)


def run_compare(cfg, grid, out: Path, echo=print, progress: bool = True, set_threads=None, restart: bool = False) -> list[dict]:
    """``edgekd compare`` after its checks: train the grid, then write and show the tables and differences."""
    from ..config import RunConfig
    from ..report.compare import collect, write_differences, write_tables
    from ..train.grid import check_recipe, grid_cells, run_grid

    cfg = RunConfig.coerce(cfg)

    cells = grid_cells(grid.teachers, grid.methods, grid.projections, grid.ranks)
    for c in cells:  # stored with the cell in compare.json, so a resumed call draws the same scenes
        c["vary_scenes"] = grid.vary_scenes
    check_recipe(out, cfg, cells, list(range(grid.seeds)), restart, grid.weights, echo)
    echo(f"edgekd compare: {len(cells)} cells x {grid.seeds} seeds = {len(cells) * grid.seeds} runs of "
         f"{cfg.train.epochs} epochs on {cfg.train.train_size} {cfg.data.data} images -> {out}")
    if set_threads is not None:
        set_threads()
    run_grid(cfg, cells, list(range(grid.seeds)), out, grid.weights, progress=progress)
    rows = collect(out)
    md, _ = write_tables(out, rows, cfg.model.task)
    echo(md.read_text())
    diff_md = write_differences(out, rows, cfg.model.task)[0]
    echo(diff_md.read_text())
    echo(f"tables in {out}/table.md, table.csv and differences.md/.csv/.json; figures: edgekd report {out}")
    return rows
