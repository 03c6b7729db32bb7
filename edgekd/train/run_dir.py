"""The run folder: refused early when unusable, made consistent with the checkpoint a run starts from."""

from __future__ import annotations

from pathlib import Path

from ..errors import EdgekdError
from ..fileio import check_out_dir, truncate_jsonl

LOGS = ("metrics.jsonl", "steps.jsonl", "spectrum.jsonl")


def check_run_dir(out: Path, resume: bool, overwrite: bool, is_main: bool) -> None:
    """Refuse a bad --out now; the folder itself is created by :func:`prepare_run_dir`, once every check has passed."""
    last = out / "last.pt"
    if resume and not last.exists():
        raise EdgekdError(f"--resume: {last} does not exist; start the run without --resume")
    if not resume and not overwrite and last.exists():
        raise EdgekdError(f"{out} already holds a run; add --resume to continue it, --overwrite to replace it, or choose --out")
    if is_main:
        check_out_dir(out)


def prepare_run_dir(out: Path, resuming: bool, overwrite: bool, step: int) -> None:
    """Create the run folder and make its logs agree with the checkpoint the run starts from (at ``step``)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise EdgekdError(f"output directory {out} is not writable ({e.strerror}); choose another --out") from None
    if resuming:  # records past the checkpoint's step will be written again: drop them
        for name in LOGS:
            truncate_jsonl(out / name, lambda r: r.get("step", 0) <= step)
        return
    # A fresh run: logs of an earlier attempt (interrupted before its first checkpoint, or --overwrite) are stale.
    stale = LOGS + (("last.pt", "best.pt", "checkpoints.json", "summary.json", "diagnostics.json") if overwrite else ())
    for name in stale:
        (out / name).unlink(missing_ok=True)
