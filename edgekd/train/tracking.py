"""Optional experiment tracking: ``edgekd distill --log tensorboard`` mirrors the run's logs into TensorBoard.

``metrics.jsonl`` (one record per epoch) and ``steps.jsonl`` (losses per step) stay the run's
record; a mirror receives every record as it is appended and writes its numbers as scalars
(``epoch/<key>``, ``step/<key>``, against the training step) under ``RUN/tensorboard``.  Open it
with ``tensorboard --logdir RUN/tensorboard``.  Nothing here is imported unless asked for: the CLI
and ``edgekd bench`` never import tensorboard.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..errors import MissingDependencyError

TRACKERS = ("tensorboard",)
_MISSING = "--log tensorboard needs the tensorboard package: pip install tensorboard (or edgekd[tensorboard])"


def check_tracker(name: str | None) -> None:
    """Refuse a tracker whose package is missing before the run starts (one line)."""
    if name == "tensorboard":
        from importlib.util import find_spec

        if find_spec("tensorboard") is None:
            raise MissingDependencyError(_MISSING)


class TensorBoardMirror:
    """Writes each numeric value of a log record as a scalar at the record's ``step``."""

    def __init__(self, run_dir, purge_step: int | None = None):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise MissingDependencyError(_MISSING) from None
        # purge_step: a resumed run drops the events from purge_step on, as it drops those lines of steps.jsonl
        self.writer = SummaryWriter(str(Path(run_dir) / "tensorboard"), purge_step=purge_step or None)

    def write(self, log: str, record: dict) -> None:
        """``log``: "metrics" (one record per epoch) or "steps"; other logs (spectrum) hold no scalars."""
        prefix = {"metrics": "epoch", "steps": "step"}.get(log)
        if prefix is None:
            return
        for key, value in record.items():
            if key not in ("step", "epoch") and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self.writer.add_scalar(f"{prefix}/{key}", value, global_step=record["step"])
        if log == "metrics":
            self.writer.flush()  # an epoch's figures are on disk when its line is

    def close(self) -> None:
        self.writer.close()


def open_mirrors(name: str | None, run_dir, step: int) -> list:
    """The trackers of ``--log`` for a run standing at ``step`` (a resume: what was logged after that step is dropped)."""
    return [TensorBoardMirror(run_dir, purge_step=step + 1 if step else None)] if name == "tensorboard" else []
