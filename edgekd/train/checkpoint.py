"""Checkpoints: everything needed to resume, written atomically, read with ``weights_only=True``."""

from __future__ import annotations

import torch

from .. import __version__
from ..errors import EdgekdError
from ..fileio import load_checkpoint, save_checkpoint

FORMAT = "edgekd-checkpoint"


def make_checkpoint(*, cfg, task_args, student, extra, optimizer, scheduler, epoch, step, epoch_step, best, metrics,
                    loss_weights=None, projection_choice=None, total_steps=None) -> dict:
    return {
        "format": FORMAT,
        "edgekd_version": __version__,
        "config": cfg,
        "task_args": task_args,
        "student": {k: v.detach().cpu() for k, v in student.state_dict().items()},
        "extra": {k: v.detach().cpu() for k, v in extra.state_dict().items()} if extra is not None else {},
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "epoch": int(epoch),  # the epoch in progress (or next to run when epoch_step == 0)
        "epoch_step": int(epoch_step),  # global batches of that epoch already done
        "step": int(step),
        "total_steps": None if total_steps is None else int(total_steps),  # the run's plan: export tells a finished run
        "best": best,
        "metrics": metrics,
        "loss_weights": loss_weights or {},  # the weights in use ("auto": re-measured every distill.recalibrate_every steps)
        "projection_choice": projection_choice,  # --projection auto: the choice made before the first step (kept on resume)
        "rng": {"torch": torch.get_rng_state()},
    }


def save(path, ckpt: dict):
    """Write ``ckpt`` atomically, then note its step and sha256 in ``checkpoints.json`` beside it (what
    export, bench and report read, torch-free, to tell whether a file still matches the run)."""
    from pathlib import Path

    from ..bench.provenance import sha256_file
    from ..config import RunConfig
    from ..fileio import atomic_write_json
    from ..models.run import CHECKPOINTS_FILE, checkpoint_steps

    written = save_checkpoint(path, ckpt)
    path = Path(path)
    known = checkpoint_steps(path.parent)
    known[path.name] = {"step": int(ckpt["step"]), "epoch": int(ckpt["epoch"]), "total_steps": ckpt.get("total_steps"),
                        "epochs": RunConfig.from_dict(ckpt["config"]).train.epochs, "sha256": sha256_file(path)}
    atomic_write_json(path.parent / CHECKPOINTS_FILE, known)
    return written


def load_for_resume(path) -> dict:
    ckpt = load_checkpoint(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise EdgekdError(f"{path} is not an edgekd training checkpoint; --resume needs the run's last.pt")
    return ckpt
