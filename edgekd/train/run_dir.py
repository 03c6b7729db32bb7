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


# What a resume may change: how long to train, where and how fast; never the model, the data or the method.
RESUMABLE = {("train", "epochs"), ("train", "max_steps"), ("train", "save_every_min"), ("train", "workers"), ("train", "device"),
             ("model", "compile"), ("train", "eval_every"), ("train", "train_eval_size")}


def saved_config(out: Path) -> dict:
    """The recipe the run in ``out`` was started with (its config.json), for ``--resume``."""
    import json

    try:
        return json.loads((out / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise EdgekdError(f"--resume: cannot read {out / 'config.json'} ({e}); start a new run with another --out") from None


def check_resume_changes(saved: dict, cfg: dict, out: Path) -> None:
    """Refuse a resume whose options would change the model or the data (anything outside :data:`RESUMABLE`)."""
    changed = [f"{sec}.{k} ({saved[sec].get(k)!r} -> {v!r})" for sec, values in cfg.items() if isinstance(values, dict) and sec in saved
               for k, v in values.items() if (sec, k) not in RESUMABLE and saved[sec].get(k) != v]
    if changed:
        raise EdgekdError(f"--resume cannot change {', '.join(changed)} of the run in {out}; a resume may only change --epochs, "
                          "--max-steps, --save-every-min, --workers, --device, --compile: start a new run with another --out")
