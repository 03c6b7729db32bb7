"""Checkpoints: everything needed to resume, written atomically, read with ``weights_only=True``."""

from __future__ import annotations

import torch

from .. import __version__
from ..errors import EdgekdError
from ..fileio import load_checkpoint, save_checkpoint

FORMAT = "edgekd-checkpoint"


def make_checkpoint(*, cfg, task_args, student, extra, optimizer, scheduler, epoch, step, epoch_step, best, metrics,
                    loss_weights=None, projection_choice=None) -> dict:
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
        "best": best,
        "metrics": metrics,
        "loss_weights": loss_weights or {},  # the weights in use ("auto": re-measured every distill.recalibrate_every steps)
        "projection_choice": projection_choice,  # --projection auto: the choice made before the first step (kept on resume)
        "rng": {"torch": torch.get_rng_state()},
    }


def save(path, ckpt: dict):
    return save_checkpoint(path, ckpt)


def load_for_resume(path) -> dict:
    ckpt = load_checkpoint(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise EdgekdError(f"{path} is not an edgekd training checkpoint; --resume needs the run's last.pt")
    return ckpt
