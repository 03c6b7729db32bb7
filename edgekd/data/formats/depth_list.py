"""``depth-list``: ``rgb,depth`` pairs in ``train.csv``/``test.csv`` (or .txt, space separated), depth PNGs in millimetres."""

from __future__ import annotations

import csv
from pathlib import Path

from ...errors import EdgekdError
from .common import VAL_NAMES, Reader, limit, read_depth_png, read_rgb

class DepthList(Reader):
    """``rgb,depth`` rows (CSV or whitespace); paths relative to the list file; depth PNG in mm."""

    format = "depth-list"

    def __init__(self, path: Path, split: str, n=None, depth_scale: float = 0.0):
        lst = _list_file(path, split)
        rows = []
        text = lst.read_text().splitlines()
        for line in text:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = next(csv.reader([line])) if "," in line else line.split()
            if len(parts) < 2:
                raise EdgekdError(f"{lst}: line {line!r} has no depth path; each line must be 'rgb,depth'")
            if parts[0].lower() in ("rgb", "image") and parts[1].lower() == "depth":
                continue  # header
            rows.append((lst.parent / parts[0], lst.parent / parts[1]))
        if not rows:
            raise EdgekdError(f"{lst} lists no image pairs")
        for a, b in rows[:50]:
            for f in (a, b):
                if not f.exists():
                    raise EdgekdError(f"{lst} names {f}, which does not exist; images and depth maps must pair one to one")
        self.items = limit(rows, n)
        self.depth_scale = depth_scale  # metres per unit; 0: 16-bit millimetres (an 8-bit PNG is refused)
        check_depth_png(rows[0][1], depth_scale)

    def __getitem__(self, i):
        a, b = self.items[i]
        return {"image": read_rgb(a), "depth": read_depth_png(b, self.depth_scale)}


def check_depth_png(path: Path, depth_scale: float) -> None:
    """An 8-bit depth PNG cannot hold millimetres (0-255 mm is 0-0.26 m): refused unless the scale is given."""
    read_depth_png(path, depth_scale)


def _list_file(path: Path, split: str) -> Path:
    if path.is_file():
        if split == "train":
            return path
        for v in VAL_NAMES:
            cand = path.with_name(path.name.replace("train", v))
            if cand != path and cand.exists():
                return cand
        raise EdgekdError(f"no validation list beside {path} (expected {path.name.replace('train', 'test')}); write one")
    names = ("train",) if split == "train" else VAL_NAMES
    for nme in names:
        for ext in (".csv", ".txt"):
            if (path / f"{nme}{ext}").exists():
                return path / f"{nme}{ext}"
    raise EdgekdError(f"{path} has no {'train' if split == 'train' else 'test/val'}.csv or .txt list")


def detect(path: Path) -> bool:
    """A list file, or a folder holding ``train.csv``/``train.txt``."""
    if path.is_file():
        return path.suffix in (".csv", ".txt")
    return any((path / f"train{e}").exists() for e in (".csv", ".txt"))
