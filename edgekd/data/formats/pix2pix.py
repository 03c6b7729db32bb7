"""``pix2pix``: aligned ``A|B`` images in ``<split>/`` (``--direction AtoB|BtoA``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import EdgekdError
from .common import IMAGE_EXT, Reader, images_in, limit, read_rgb, split_base, split_dir

class Pix2Pix(Reader):
    """Aligned A|B images (pix2pix's layout): the left half is A, the right half B."""

    format = "pix2pix"

    def __init__(self, root: Path, split: str, n=None, direction: str = "AtoB"):
        d = split_dir(root, split)
        if d is None:
            raise EdgekdError(f"{root} has no {'train' if split == 'train' else 'val/test'} folder of A|B images")
        self.items = limit(images_in(d), n)
        if not self.items:
            raise EdgekdError(f"{d} holds no images")
        self.direction = direction

    def __getitem__(self, i):
        ab = read_rgb(self.items[i])
        w = ab.shape[1] // 2
        if w == 0 or ab.shape[1] % 2:
            raise EdgekdError(f"{self.items[i]} is {ab.shape[1]} pixels wide: an aligned A|B image has an even width")
        a, b = ab[:, :w], ab[:, w:]
        if self.direction == "BtoA":
            a, b = b, a
        return {"image": np.ascontiguousarray(a), "target_image": np.ascontiguousarray(b)}


def detect(path: Path) -> bool:
    """Images in the train subfolder (or the folder); the image-folder format has the same rule and comes later."""
    if path.is_file():
        return False
    return any(p.suffix.lower() in IMAGE_EXT for p in split_base(path).rglob("*"))
