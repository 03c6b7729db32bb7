"""Datasets as numpy samples (torch-free, so the bench can evaluate on a device without torch).

A sample is a dict: ``image`` (H, W, 3) uint8 and, where the source has them,
``depth`` (H, W) float32 metres, ``labels`` (H, W) uint8 (255 = void),
``label`` (int), ``colour_map`` / ``target_image`` (H, W, 3) uint8.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import EdgekdError


def open_dataset(data: str, split: str, image_size, n: int | None = None, seed: int = 0, data_format: str = "auto",
                 task: str | None = None, direction: str = "AtoB", depth_scale: float = 0.0):
    """Open ``data`` ("synthetic" or a path) for ``split`` ("train" / "val"); the task guides format detection;
    ``depth_scale``: metres per unit of a depth PNG (0: millimetres in a 16-bit PNG)."""
    if data == "synthetic":
        if n is None:
            n = 654 if split == "val" else 795
        from .rendered_scenes import SyntheticScenes

        return SyntheticScenes(split, n, image_size, seed=seed)
    path = Path(data).expanduser()
    if not path.exists():
        raise EdgekdError(f"data path {path} does not exist; give an existing folder/file or --data synthetic")
    from .formats import detect_and_open

    return detect_and_open(path, split, n=n, data_format=data_format, task=task, direction=direction, depth_scale=depth_scale)
