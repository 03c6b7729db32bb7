"""``label-maps``: COCO-stuff style ``images/<split>/*.jpg`` + ``annotations/<split>/*.png``
(label ids per pixel, 255 = void; class names from ``classes.txt`` if present).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import EdgekdError
from .common import VAL_NAMES, Reader, images_in, limit, read_raw, read_rgb

class LabelMaps(Reader):
    """COCO-stuff style: ``images/<split>/`` and ``annotations/<split>/`` (or ``labels/``) with the same stems."""

    format = "label-maps"

    def __init__(self, root: Path, split: str, n=None):
        ann_root = next((root / a for a in ("annotations", "labels") if (root / a).is_dir()), None)
        img_dir = _split_sub(root / "images", split)
        ann_dir = _split_sub(ann_root, split)
        imgs = images_in(img_dir)
        if not imgs:
            raise EdgekdError(f"{img_dir} holds no images")
        masks = {p.stem: p for p in images_in(ann_dir)}
        missing = [p.name for p in imgs if p.stem not in masks]
        if missing:
            raise EdgekdError(f"{len(missing)} images in {img_dir} have no label map in {ann_dir} (first: {missing[0]}); they must pair one to one")
        self.items = limit([(p, masks[p.stem]) for p in imgs], n)
        names = root / "classes.txt"
        if names.exists():
            self.classes = [x.strip() for x in names.read_text().splitlines() if x.strip()]
        else:  # the largest id found (255 = void) in a sample of the maps
            top = 0
            for _, m in self.items[:200]:
                lab = read_raw(m)
                v = lab[lab != 255]
                top = max(top, int(v.max()) if v.size else 0)
            self.classes = [str(i) for i in range(top + 1)]

    def __getitem__(self, i):
        img, mask = self.items[i]
        return {"image": read_rgb(img), "labels": read_raw(mask).astype(np.uint8)}


def _split_sub(d: Path | None, split: str) -> Path:
    if d is None or not d.is_dir():
        raise EdgekdError(f"missing folder {d}; a label-map dataset needs images/ and annotations/ (or labels/)")
    sub = next((d / f"{s}{y}" for s in (("train",) if split == "train" else VAL_NAMES) for y in ("", "2017", "2014") if (d / f"{s}{y}").is_dir()), None)
    if sub is None:
        raise EdgekdError(f"{d} has no {'train' if split == 'train' else 'val'} subfolder")
    return sub


def detect(path: Path) -> bool:
    if path.is_file():
        return False
    return (path / "images").is_dir() and ((path / "annotations").is_dir() or (path / "labels").is_dir())
