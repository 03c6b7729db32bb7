"""What ``edgekd bench`` was asked to do: the options of one bench run, checked before any model is loaded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import EdgekdError

# The least value each count or time can be measured with (0 is not "the default").
_LEAST = {"val_size": 1, "batch": 1, "threads": 1, "min_iters": 1, "min_time": 0, "warmup_iters": 0, "warmup_time": 0}


@dataclass
class BenchSettings:
    """The options of ``edgekd bench`` (``None``: the profile's, the target's or the model's own)."""

    model: str | Path
    profile: str | None = None
    target: str | None = None
    backend: str | None = None
    data: str | None = None
    data_format: str | None = None
    val_size: int | None = None
    batch: int | None = None
    threads: int | None = None
    min_iters: int | None = None
    min_time: float | None = None
    warmup_iters: int | None = None
    warmup_time: float | None = None
    accuracy_check: bool = True
    show_progress: bool = True
    compare_to: str | Path | None = None  # an earlier bench --json to compare with (or refuse as incomparable)
    placement: bool = True  # profile where the nodes ran (a separate short run after the timing)
    shape: tuple | None = None  # (H, W) for a model whose image size is dynamic

    def check(self) -> None:
        """Counts and times that cannot be measured with: refused before any model is loaded."""
        for name, least in _LEAST.items():
            v = getattr(self, name)
            if v is not None and v < least:
                raise EdgekdError(f"--{name.replace('_', '-')} {v}: use at least {least}")

    def timing(self, bc) -> dict:
        """Warm-up and run lengths: these options over the profile's ``[bench]`` table ``bc`` (a :class:`~edgekd.config.BenchConfig`)."""
        s = {"warmup_iters": self.warmup_iters if self.warmup_iters is not None else bc.warmup_iters,
             "warmup_time": self.warmup_time if self.warmup_time is not None else bc.warmup_time,
             "min_iters": self.min_iters or bc.min_iters,
             "min_time": self.min_time if self.min_time is not None else bc.min_time}
        s["warmup_iters"] = max(s["warmup_iters"], 10)  # docs/architecture.md, "The deployment contract": >= 200 ms and >= 10 runs
        s["warmup_time"] = max(s["warmup_time"], 0.2)
        return s
