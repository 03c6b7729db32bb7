"""What ``edgekd bench`` was asked to do: the options of one bench run, checked before any model is loaded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import EdgekdError
from ..options import least_values, option


def parse_hw(text: str) -> tuple[int, int]:
    """``--shape 480x640`` -> (480, 640)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"{text!r} must look like HxW, e.g. 640x640") from None
    if h < 1 or w < 1:
        raise ValueError(f"{text!r}: both sides must be at least 1")
    return h, w


def _backends() -> list:
    from .runners.base import list_backends

    return ["auto", "all", *list_backends(aliases=True)]


@dataclass
class BenchSettings:
    """The options of ``edgekd bench`` (``None``: the profile's, the target's or the model's own); each field's help is its option's."""

    model: str | Path
    profile: str | None = option(None, "Profile whose target, input size and bench settings to use [the model's].")
    target: str | None = option(None, "Target name or TOML (overrides the profile's).")
    backend: str | None = option(None, "[auto: the first of the target's runtimes this machine has; all (RUN_DIR): every backend here]",
                                 choices=_backends)
    data: str | None = option(None, "Validation data: 'synthetic' or a path [the data the model was trained on].")
    data_format: str | None = option(None, "Format of --data when it cannot be detected [the model's, else auto].")
    val_size: int | None = option(None, "Validation images for the accuracy check [the run's].", type=int, lo=1)
    batch: int | None = option(None, "Also measure at this batch size (batch 1 always).", type=int, lo=1)
    threads: int | None = option(None, "CPU threads [the target's, at most this machine's cores].", type=int, lo=1)
    min_iters: int | None = option(None, "Run at least this many timed iterations [profile: 100].", type=int, lo=1)
    min_time: float | None = option(None, "...and for at least this many seconds [profile: 2].", type=float, lo=0)
    warmup_iters: int | None = option(None, "Untimed runs first, at least 10 [profile: 10].", type=int, lo=0)
    warmup_time: float | None = option(None, "...and at least this many seconds, at least 0.2 [profile: 0.2].", type=float, lo=0)
    accuracy_check: bool = option(True, "Latency only (any ONNX model; no validation data needed).", flag="--no-accuracy")
    shape: tuple | None = option(None, "Image size to time a model with a dynamic input size at [224x224].", metavar="HxW",
                                 parse=parse_hw)  # (H, W) for a model whose image size is dynamic
    compare_to: str | Path | None = option(None, "An earlier --json result: latency ratios, or why the two are incomparable (device state).",
                                           path=True)  # an earlier bench --json to compare with (or refuse as incomparable)
    show_progress: bool = option(True, "No progress bars.", flag="--quiet")
    placement: bool = True  # profile where the nodes ran (a separate short run after the timing)

    def check(self) -> None:
        """Counts and times that cannot be measured with: refused before any model is loaded."""
        for name, least in least_values(BenchSettings).items():
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
