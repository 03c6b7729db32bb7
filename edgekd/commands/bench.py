"""``edgekd bench``: one model file, or every exported file of a run directory; the table, the JSON, the verdicts."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import EdgekdError


def bench(s, json_path: str | None = None) -> None:
    """Bench ``s.model`` (:class:`~edgekd.bench.settings.BenchSettings`); write the result to ``json_path``
    [RUN/bench/<file>.json for a model inside a run directory]."""
    if Path(s.model).expanduser().is_dir():
        return _bench_run_dir(s, json_path)
    if s.backend == "all":
        raise EdgekdError("--backend all benches every file of a run directory on every backend here; give RUN_DIR, or name one backend")
    from ..bench.run import bench as bench_model
    from ..bench.run import format_table

    result = bench_model(s, log=print)
    click.echo(format_table(result))
    _write(json_path or run_bench_path(s.model), result)
    if "budget" in result and result["budget"]["pass"] is False:
        click.echo(f"latency budget of {result['budget']['target']} missed", err=True)
    if "memory_budget" in result and result["memory_budget"]["pass"] is False:
        click.echo(f"memory of {result['memory_budget']['target']} exceeded", err=True)


def _write(json_path, result: dict) -> None:
    if json_path:
        from ..fileio import atomic_write_json

        atomic_write_json(json_path, result)
        click.echo(f"wrote {json_path}")


def _bench_run_dir(s, json_path) -> None:
    from ..bench.run_dir import bench_run_dir, format_run_table

    result = bench_run_dir(s, log=click.echo)
    click.echo(format_run_table(result))
    _write(json_path, result)


def run_bench_path(model: str):
    """A model inside a run directory (config.json or export.json beside it): RUN/bench/<file>.json, which edgekd report reads."""
    folder = Path(model).parent
    if (folder / "config.json").exists() or (folder / "export.json").exists():
        return str(folder / "bench" / f"{Path(model).name}.json")
    return None

