"""Detect a dataset's on-disk format from its path and open it."""

from __future__ import annotations

from pathlib import Path

from ..errors import EdgekdError

FORMATS = ("edgekd-scenes",)


def detect_format(path: Path) -> str:
    from .scenes import META_FILE, SCENES_FORMAT

    if path.is_dir():
        if not any(path.iterdir()):
            raise EdgekdError(f"data folder {path} is empty; put a dataset there or use --data synthetic")
        if (path / META_FILE).exists():
            return SCENES_FORMAT
    raise EdgekdError(
        f"cannot tell the dataset format of {path}; name it with --data-format (one of: {', '.join(FORMATS)}) "
        "or write scenes with edgekd data synth"
    )


def detect_and_open(path: Path, split: str, n=None, data_format: str = "auto"):
    fmt = detect_format(path) if data_format == "auto" else data_format
    if fmt == "edgekd-scenes":
        from .scenes import SceneFolder

        return SceneFolder(path, split, n=n)
    raise EdgekdError(f"unknown --data-format {fmt!r}; use one of: {', '.join(FORMATS)}")
