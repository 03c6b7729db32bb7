"""Rendered synthetic scenes kept on disk, so a second run (or a ``--resume``) does not render them again.

Where: ``$EDGEKD_CACHE/scenes`` if ``EDGEKD_CACHE`` is set, else ``$XDG_CACHE_HOME/edgekd/scenes`` (usually
``~/.cache/edgekd/scenes``).  ``EDGEKD_CACHE=off`` turns the cache off; deleting the folder clears it.
A scene is keyed by the renderer's source (a hash of scene_render.py: a changed renderer never reads old
scenes), its size, the data seed, the split and its index: one uncompressed ``.npz`` per scene (a 256x320
scene is 0.66 MB, the full 795 + 654 jetson set about 0.95 GB; 64x96 scenes 49 KB).  Files are written
atomically; an unreadable one is rendered again.
"""

from __future__ import annotations

import hashlib
import io
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from .scene_render import PALETTE

_KEYS = ("image", "depth", "labels")  # colour_map is PALETTE[labels]; label is stored alongside


def cache_root() -> Path | None:
    """The scenes folder, or None when ``EDGEKD_CACHE=off``."""
    env = os.environ.get("EDGEKD_CACHE", "")
    if env.lower() in ("off", "0", "none", "false"):
        return None
    if env:
        return Path(env).expanduser() / "scenes"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgekd" / "scenes"


@lru_cache(maxsize=1)
def renderer_version() -> str:
    """A hash of the renderer's source: scenes of another renderer are never read."""
    return hashlib.sha256(Path(__file__).with_name("scene_render.py").read_bytes()).hexdigest()[:12]


def scene_folder(height: int, width: int, seed: int, split: str) -> Path | None:
    root = cache_root()
    if root is None:
        return None
    return root / f"r{renderer_version()}" / f"{height}x{width}" / f"seed{seed}" / split


def load(folder: Path | None, index: int) -> dict | None:
    if folder is None:
        return None
    try:
        with np.load(folder / f"{index:06d}.npz") as f:
            scene = {k: f[k] for k in _KEYS}
            scene["label"] = int(f["label"])
    except (OSError, ValueError, KeyError, EOFError):
        return None  # not cached yet, or damaged: rendered again
    scene["colour_map"] = PALETTE[scene["labels"]]
    return scene


def store(folder: Path | None, index: int, scene: dict) -> None:
    """Write one scene (a full disk or a read-only cache only costs the cache, never the run)."""
    if folder is None:
        return
    from ..errors import EdgekdError
    from ..fileio import atomic_write_bytes

    buf = io.BytesIO()
    np.savez(buf, label=np.int64(scene["label"]), **{k: scene[k] for k in _KEYS})
    try:
        atomic_write_bytes(folder / f"{index:06d}.npz", buf.getvalue())
    except (OSError, EdgekdError):
        pass
