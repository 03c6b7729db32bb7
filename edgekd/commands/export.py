"""``edgekd export``: one export of a run, under the run's lock."""

from __future__ import annotations

from pathlib import Path

import click


def export(request) -> dict:
    """Export ``request.run`` (an :class:`~edgekd.export.pipeline.ExportRequest`) while no other verb writes its folder."""
    from ..export.pipeline import export_run
    from ..run_lock import RunLock
    from ..train.stop import report_sigterm

    report_sigterm()
    run = Path(request.run)
    folder = run if run.is_dir() else run.parent
    with RunLock(folder, "export", enabled=run.exists()):  # a missing RUN is refused by export_run in one line
        return export_run(request, log=click.echo)  # no --precision: the profile's (export.precision)
