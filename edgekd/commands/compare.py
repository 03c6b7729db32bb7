"""``edgekd compare``: check the whole grid (every teacher's files, the options compare sets itself), then train it."""

from __future__ import annotations

from dataclasses import dataclass

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
    out: str = ""
    restart: bool = False
    quiet: bool = False


def compare(s: CompareSettings) -> None:
    """Refuse what compare would ignore or could not build, then train and tabulate the grid in ``s.out``."""
    from ..fileio import check_out_dir
    from ..models.teacher_kinds import check_grid_teachers, check_teacher_spec
    from ..run_lock import RunLock
    from ..train.grid import parse_grid, refuse_grid_set, run_compare
    from ..train.stop import report_sigterm
    from ..train.threads import set_threads
    from .distill import resolve_config

    kw = s.options
    refuse_grid_set(kw.get("seed"), kw.get("sets"))
    cfg = resolve_config({**kw, "teacher": None, "spectral": None})
    if kw.get("distill_weight") is not None:
        cfg["distill"]["weight"] = kw["distill_weight"]
    grid = parse_grid(s.teachers, s.teacher_weight_map, s.methods, s.projections, s.spectral_ranks, s.seeds)
    for t in grid.teachers:
        check_teacher_spec(t, grid.weights.get(t))
    check_grid_teachers(grid.teachers, grid.weights)
    out = check_out_dir(s.out)
    report_sigterm()
    with RunLock(out, "compare"):
        run_compare(cfg, grid, out, echo=click.echo, progress=not s.quiet, set_threads=lambda: set_threads(kw.get("threads")),
                    restart=s.restart)
