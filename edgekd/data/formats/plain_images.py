"""``image-folder``: any folder of images (colourisation); ``train``/``val`` subfolders or a deterministic 90/10 split.

Not to be confused with ``imagefolder`` (class_folders.py), torchvision's layout of one folder per class.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import EdgekdError
from .common import IMAGE_EXT, Reader, hash_split, images_in, limit, read_rgb, split_base, split_dir, too_few

class ImageFolderPlain(Reader):
    """Any folder of images (colourisation needs nothing else)."""

    format = "image-folder"

    def __init__(self, root: Path, split: str, n=None):
        d = split_dir(root, split)
        if d is None:
            found = images_in(root, recursive=True)
            items = hash_split(found, split)
            if not items:
                raise too_few(root, len(found), split)
        else:
            items = images_in(d, recursive=True)
        if not items:
            raise EdgekdError(f"{d} holds no images for the {split} split")
        self.items = limit(items, n)

    def __getitem__(self, i):
        return {"image": read_rgb(self.items[i])}


def detect(path: Path) -> bool:
    """Any image in the train subfolder (or the folder), at any depth."""
    if path.is_file():
        return False
    return any(p.suffix.lower() in IMAGE_EXT for p in split_base(path).rglob("*"))
