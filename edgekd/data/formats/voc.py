"""``voc``: VOC-style segmentation (``JPEGImages``, palette PNGs in ``SegmentationClass``,
``ImageSets/Segmentation/{train,val}.txt``; 255 = void).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import EdgekdError
from .common import Reader, limit, read_raw, read_rgb

VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")

class VOCSegmentation(Reader):
    format = "voc"
    classes = list(VOC_CLASSES)

    def __init__(self, root: Path, split: str, n=None):
        root = _voc_root(root)
        sets = root / "ImageSets" / "Segmentation"
        name = "train" if split == "train" else "val"
        lst = sets / f"{name}.txt"
        if not lst.exists():
            raise EdgekdError(f"{lst} does not exist; a VOC tree needs ImageSets/Segmentation/{name}.txt")
        ids = [x.strip() for x in lst.read_text().splitlines() if x.strip()]
        if not ids:
            raise EdgekdError(f"{lst} is empty")
        self.items = []
        for k in ids:
            img, mask = root / "JPEGImages" / f"{k}.jpg", root / "SegmentationClass" / f"{k}.png"
            if not img.exists() or not mask.exists():
                raise EdgekdError(f"{k} in {lst} has no {'image' if not img.exists() else 'mask'} "
                                  f"({img if not img.exists() else mask}); images and labels must pair one to one")
            self.items.append((img, mask))
        self.items = limit(self.items, n)

    def __getitem__(self, i):
        img, mask = self.items[i]
        lab = read_raw(mask)
        if lab.ndim == 3:
            raise EdgekdError(f"{mask} is an RGB image; VOC masks must be palette (P mode) PNGs of class indices")
        return {"image": read_rgb(img), "labels": lab.astype(np.uint8)}


def _voc_root(root: Path) -> Path:
    if (root / "JPEGImages").is_dir():
        return root
    for sub in sorted(root.glob("VOC*")):
        if (sub / "JPEGImages").is_dir():
            return sub
    raise EdgekdError(f"{root} is not a VOC tree (no JPEGImages folder)")


def detect(path: Path) -> bool:
    """A folder with ``JPEGImages``, or with a ``VOC*`` folder that has one (the VOCdevkit layout)."""
    if path.is_file():
        return False
    return (path / "JPEGImages").is_dir() or any((p / "JPEGImages").is_dir() for p in path.glob("VOC*"))
