"""Detect a dataset's on-disk format from its path (and the task), and open it."""

from __future__ import annotations

from pathlib import Path

from ..errors import EdgekdError

FORMATS = ("edgekd-scenes", "nyu-mat", "depth-list", "voc", "label-maps", "pix2pix", "image-folder", "imagefolder")
# What each task can learn from: the first format of the task's list that fits the path wins.
TASK_FORMATS = {
    "depth": ("edgekd-scenes", "nyu-mat", "depth-list"),
    "segmentation": ("edgekd-scenes", "voc", "label-maps"),  # NYUv2's 894 raw classes need a 13/40-class mapping first
    "classification": ("edgekd-scenes", "imagefolder"),
    "colourisation": ("edgekd-scenes", "image-folder"),
    "translation": ("edgekd-scenes", "pix2pix"),
}


def _looks_like(fmt: str, path: Path) -> bool:
    from .folders import IMAGE_EXT, VAL_NAMES
    from .scenes import META_FILE

    if fmt == "nyu-mat":
        return path.is_file() and path.suffix == ".mat"
    if path.is_file():
        return fmt == "depth-list" and path.suffix in (".csv", ".txt")
    if fmt == "edgekd-scenes":
        return (path / META_FILE).exists()
    if fmt == "depth-list":
        return any((path / f"train{e}").exists() for e in (".csv", ".txt"))
    if fmt == "voc":
        return (path / "JPEGImages").is_dir() or any((p / "JPEGImages").is_dir() for p in path.glob("VOC*"))
    if fmt == "label-maps":
        return (path / "images").is_dir() and ((path / "annotations").is_dir() or (path / "labels").is_dir())
    splits = [path / n for n in ("train", *VAL_NAMES) if (path / n).is_dir()]
    if fmt == "imagefolder":
        base = splits[0] if splits else path
        return any(p.is_dir() for p in base.iterdir())
    if fmt in ("pix2pix", "image-folder"):
        base = splits[0] if splits else path
        return any(p.suffix.lower() in IMAGE_EXT for p in base.rglob("*"))
    return False


def detect_format(path: Path, task: str | None = None) -> str:
    if path.is_dir() and not any(path.iterdir()):
        raise EdgekdError(f"data folder {path} is empty; put a dataset there or use --data synthetic")
    candidates = TASK_FORMATS.get(task, FORMATS) if task else FORMATS
    for fmt in candidates:
        if _looks_like(fmt, path):
            return fmt
    what = f" for the {task} task" if task else ""
    raise EdgekdError(
        f"cannot tell the dataset format of {path}{what}; name it with --data-format (one of: {', '.join(candidates)}) "
        "or see the README's Data section for the layouts"
    )


def detect_and_open(path: Path, split: str, n=None, data_format: str = "auto", task: str | None = None, direction: str = "AtoB"):
    fmt = detect_format(path, task) if data_format == "auto" else data_format
    from . import folders
    from .scenes import SceneFolder

    openers = {
        "edgekd-scenes": lambda: SceneFolder(path, split, n=n),
        "nyu-mat": lambda: folders.NYUv2Mat(path, split, n),
        "depth-list": lambda: folders.DepthList(path, split, n),
        "voc": lambda: folders.VOCSegmentation(path, split, n),
        "label-maps": lambda: folders.LabelMaps(path, split, n),
        "pix2pix": lambda: folders.Pix2Pix(path, split, n, direction),
        "image-folder": lambda: folders.ImageFolderPlain(path, split, n),
        "imagefolder": lambda: folders.ImageFolderClasses(path, split, n),
    }
    if fmt not in openers:
        raise EdgekdError(f"unknown --data-format {fmt!r}; use one of: {', '.join(FORMATS)}")
    return openers[fmt]()
