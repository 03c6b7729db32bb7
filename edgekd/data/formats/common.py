"""What the readers of the on-disk formats share: image files, split folders, a hash split, a base class.

Each format's reader is in its own module here and yields numpy samples (see ``edgekd.data``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ...errors import EdgekdError

IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff"}
VAL_NAMES = ("val", "test", "valid", "validation")


def read_rgb(path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as e:
        raise EdgekdError(f"cannot read image {path} ({type(e).__name__}); remove or replace the file") from None


def read_raw(path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im)  # palette PNGs stay as indices
    except Exception as e:
        raise EdgekdError(f"cannot read {path} ({type(e).__name__}); remove or replace the file") from None


def read_depth_png(path, depth_scale: float = 0.0) -> np.ndarray:
    """A depth PNG as metres (float32): 16-bit integers in millimetres, or integers of ``depth_scale`` metres each
    (``--depth-scale``); any other kind, or an 8-bit PNG without a scale, is refused in one line."""
    raw = read_raw(path)
    if raw.ndim != 2:
        raise EdgekdError(f"depth map {path} has {raw.shape[2]} channels (an image, not a depth map); depth PNGs hold millimetres "
                          "as one 16-bit channel")
    if raw.dtype == bool:
        raise EdgekdError(f"depth map {path} is 1-bit: it cannot hold millimetres; save depth as a 16-bit PNG of millimetres (uint16)")
    if raw.dtype.kind not in "iu":
        raise EdgekdError(f"depth map {path} holds {raw.dtype} values; depth PNGs hold millimetres as 16-bit integers")
    if raw.dtype == np.uint8 and not depth_scale:
        hi = int(raw.max())
        raise EdgekdError(f"depth map {path} is 8-bit: it cannot hold millimetres (an 8-bit depth PNG (values {int(raw.min())}-{hi}) "
                          f"as millimetres is 0-{hi / 1000:.3f} m); say how many metres one unit is with --depth-scale "
                          f"(e.g. --depth-scale {10 / max(hi, 1):.3g} if {hi} is 10 m), or save depth as a 16-bit PNG of millimetres")
    return raw.astype(np.float32) * np.float32(depth_scale or 1e-3)


def images_in(d: Path, recursive: bool = False) -> list[Path]:
    it = d.rglob("*") if recursive else d.glob("*")
    return sorted(p for p in it if p.suffix.lower() in IMAGE_EXT and p.is_file())


def split_dir(root: Path, split: str) -> Path | None:
    names = ("train",) if split == "train" else VAL_NAMES
    return next((root / n for n in names if (root / n).is_dir()), None)


def hash_split(paths: list[Path], split: str, val_fraction: float = 0.1) -> list[Path]:
    """Deterministic split by a hash of the file name (stable when files are added).

    Any two or more files give both splits: 10% of a small folder rounds to nothing, so the file
    with the lowest hash goes to validation (and the highest stays for training) when needed."""
    def h(p):
        return int(hashlib.md5(p.name.encode()).hexdigest(), 16) % 1000

    val = {p for p in paths if h(p) < val_fraction * 1000}
    if len(paths) >= 2 and not val:
        val = {min(paths, key=h)}
    elif len(paths) >= 2 and len(val) == len(paths):
        val.discard(max(paths, key=h))
    return [p for p in paths if (p in val) == (split != "train")]


def too_few(root: Path, found: int, split: str) -> EdgekdError:
    return EdgekdError(f"{root} holds {found} image{'s' if found != 1 else ''}, too few for a {split} split: a folder without "
                       "train/ and val/ subfolders needs at least 2 (one to train on, one to validate)")


def limit(items, n):
    return items if n is None else items[: int(n)]


class Reader:
    """A dataset read from disk: ``items`` (one per sample), ``format`` (its registered name), ``classes``."""

    format = ""
    classes: list = []
    eval_crop_fraction = None

    def __len__(self):
        return len(self.items)


def split_base(path: Path) -> Path:
    """The folder whose contents show the layout: the train (or val) subfolder if there is one, else ``path``."""
    splits = [path / n for n in ("train", *VAL_NAMES) if (path / n).is_dir()]
    return splits[0] if splits else path
