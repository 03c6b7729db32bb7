"""``imagefolder``: torchvision's ImageFolder layout, ``<split>/<class>/*.jpg`` (classification).

Not to be confused with ``image-folder`` (plain_images.py), a folder of images without classes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ...errors import EdgekdError
from .common import Reader, hash_split, images_in, limit, read_rgb, split_base, split_dir, too_few

class ImageFolderClasses(Reader):
    """torchvision's ImageFolder layout: ``<split>/<class>/*.jpg`` (or ``<class>/*.jpg`` split by hash)."""

    format = "imagefolder"

    def __init__(self, root: Path, split: str, n=None):
        d = split_dir(root, split)
        base = d if d is not None else root
        train_base = split_dir(root, "train") or root
        self.classes = sorted(p.name for p in train_base.iterdir() if p.is_dir())
        if not self.classes:
            raise EdgekdError(f"{train_base} has no class folders; the layout is <split>/<class>/image.jpg")
        items, found = [], 0
        for k, c in enumerate(self.classes):
            files = images_in(base / c) if (base / c).is_dir() else []
            found += len(files)
            if d is None:
                files = hash_split(files, split)
            items += [(f, k) for f in files]
        if not items and d is None and found:
            raise too_few(root, found, split) if found < 2 else EdgekdError(
                f"{root}: each class folder holds a single image, so none is left for validation; add images or make train/ and val/ folders")
        if not items:
            raise EdgekdError(f"{base} holds no images in its class folders")
        # interleave classes so that --train-size N takes every class
        items.sort(key=lambda t: (hashlib.md5(t[0].name.encode()).hexdigest(), t[1]))
        self.items = limit(items, n)

    def __getitem__(self, i):
        f, k = self.items[i]
        return {"image": read_rgb(f), "label": k}


def detect(path: Path) -> bool:
    """Any folder inside the train subfolder (or the folder): a class folder."""
    if path.is_file():
        return False
    return any(p.is_dir() for p in split_base(path).iterdir())
