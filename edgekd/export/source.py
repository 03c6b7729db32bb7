"""Which checkpoint ``edgekd export`` takes, said in one line, and what every file it writes records of it.

The choice (docs/deployment-records.md):

* a finished run: ``best.pt`` (the best validation), else ``last.pt``;
* an unfinished run (its ``last.pt`` is short of the planned steps) with a ``best.pt``: ``best.pt``, the best
  validation so far, with a line saying the run is unfinished;
* an unfinished run without a ``best.pt`` (stopped before its first evaluation): refused, since its
  ``last.pt`` may be a few steps into a long run, unless ``--allow-unfinished``;
* a ``.pt`` file named on the command line: that file, with its step in the line.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..bench.provenance import checkpoint_steps, sha256_file
from ..config import RunConfig
from ..errors import EdgekdError


def run_progress(run_dir: Path) -> dict | None:
    """{"step", "total_steps", "epoch", "epochs", "finished"} of the run's last.pt from checkpoints.json, or None
    (a run written by an older edgekd, or no last.pt)."""
    last = checkpoint_steps(run_dir).get("last.pt")
    if not last or not (run_dir / "last.pt").exists():
        return None
    try:
        train = RunConfig.from_dict(json.loads((run_dir / "config.json").read_text())).train
    except (OSError, ValueError):
        train = None  # no config to read: only checkpoints.json tells
    epochs = last.get("epochs") or (train.epochs if train else None)
    max_steps = (train.max_steps if train else 0) or 0
    total = last.get("total_steps")
    if total:
        finished = last["step"] >= total
    else:
        finished = bool((epochs and last["epoch"] >= epochs) or (max_steps and last["step"] >= max_steps))
    return {**last, "epochs": epochs, "finished": finished}


def _of(p: dict) -> str:
    return f"step {p['step']}" + (f" of {p['total_steps']}" if p.get("total_steps") else "")


def choose_checkpoint(run, allow_unfinished: bool = False, log=print) -> tuple[Path, Path]:
    """A run directory or a checkpoint file -> (checkpoint, directory to write into), by the rules above."""
    p = Path(run).expanduser()
    if not p.is_dir():
        if not p.exists():
            raise EdgekdError(f"{p} does not exist; give a run directory (runs/<name>) or a checkpoint .pt file")
        return p, p.parent
    best, last = p / "best.pt", p / "last.pt"
    if not best.exists() and not last.exists():
        raise EdgekdError(f"{p} holds no best.pt or last.pt; give a run directory written by edgekd distill")
    prog = run_progress(p)
    if prog is None or prog["finished"]:
        return (best if best.exists() else last), p
    if best.exists():
        log(f"note: the run in {p} is unfinished (last.pt at {_of(prog)}); exporting best.pt, the best validation so far")
        return best, p
    if not allow_unfinished:
        raise EdgekdError(f"the run in {p} is unfinished (last.pt at {_of(prog)}) and has no best.pt yet; finish it with "
                          f"edgekd distill --resume --out {p}, or export last.pt as it is with --allow-unfinished")
    log(f"note: --allow-unfinished: exporting last.pt at {_of(prog)} of an unfinished run")
    return last, p


def checkpoint_source(ckpt_path: Path, ckpt: dict) -> dict:
    """What every exported file records of its checkpoint: name, step and sha256 (bench/provenance.py reads it)."""
    return {"checkpoint": Path(ckpt_path).name, "checkpoint_step": ckpt.get("step"), "checkpoint_sha256": sha256_file(ckpt_path)}


def describe(ckpt_path: Path, ckpt: dict, primary: str | None) -> str:
    """The line export prints about the checkpoint it took."""
    total = ckpt.get("total_steps")
    metrics = ckpt.get("metrics") or {}
    best = f"; validation {primary} {metrics[primary]:.4f}" if primary and isinstance(metrics.get(primary), (int, float)) else ""
    return (f"exporting {ckpt_path} (step {ckpt.get('step')}" + (f" of {total}" if total else "")
            + f", after epoch {ckpt.get('epoch')}{best})")
