"""``edgekd compare``: train the grid (train/grid.py), then write and show its tables and differences (report/compare.py).

It stands above both: the training floor knows nothing of the report, the report only reads files.
"""

from __future__ import annotations

from pathlib import Path


def run_compare(cfg: dict, grid, out: Path, echo=print, progress: bool = True, set_threads=None, restart: bool = False) -> list[dict]:
    """``edgekd compare`` after its checks: train the grid, then write and show the tables and differences."""
    from ..report.compare import collect, write_differences, write_tables
    from ..train.grid import check_recipe, grid_cells, run_grid

    cells = grid_cells(grid.teachers, grid.methods, grid.projections, grid.ranks)
    for c in cells:  # stored with the cell in compare.json, so a resumed call draws the same scenes
        c["vary_scenes"] = grid.vary_scenes
    check_recipe(out, cfg, cells, list(range(grid.seeds)), restart, grid.weights, echo)
    echo(f"edgekd compare: {len(cells)} cells x {grid.seeds} seeds = {len(cells) * grid.seeds} runs of "
         f"{cfg['train']['epochs']} epochs on {cfg['train']['train_size']} {cfg['data']['data']} images -> {out}")
    if set_threads is not None:
        set_threads()
    run_grid(cfg, cells, list(range(grid.seeds)), out, grid.weights, progress=progress)
    rows = collect(out)
    md, _ = write_tables(out, rows, cfg["model"]["task"])
    echo(md.read_text())
    diff_md = write_differences(out, rows, cfg["model"]["task"])[0]
    echo(diff_md.read_text())
    echo(f"tables in {out}/table.md, table.csv and differences.md/.csv/.json; figures: edgekd report {out}")
    return rows
