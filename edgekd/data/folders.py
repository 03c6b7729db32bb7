"""Real dataset formats users bring.  Each loader yields numpy samples (see ``edgekd.data``).

* ``nyu-mat``: NYU Depth v2 ``nyu_depth_v2_labeled.mat`` (HDF5, MATLAB axes: read transposed);
  the official 795/654 split from ``splits.mat`` (or ``train.txt``/``test.txt``, 1-based indices)
  beside it; Eigen crop for evaluation.
* ``depth-list``: ``rgb,depth`` pairs in ``train.csv``/``test.csv`` (or .txt, space separated),
  depth PNGs in millimetres.
* ``voc``: VOC-style segmentation (``JPEGImages``, palette PNGs in ``SegmentationClass``,
  ``ImageSets/Segmentation/{train,val}.txt``; 255 = void).
* ``label-maps``: COCO-stuff style ``images/<split>/*.jpg`` + ``annotations/<split>/*.png``
  (label ids per pixel, 255 = void; class names from ``classes.txt`` if present).
* ``pix2pix``: aligned ``A|B`` images in ``<split>/`` (``--direction AtoB|BtoA``).
* ``image-folder``: any folder of images (colourisation); ``train``/``val`` subfolders or a
  deterministic 90/10 split.
* ``imagefolder``: ``<split>/<class>/*.jpg`` (classification).
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np

from ..errors import EdgekdError

IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff"}
VAL_NAMES = ("val", "test", "valid", "validation")
EIGEN_CROP = (45, 471, 41, 601)  # on NYUv2's 480x640 frames
VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")


def _read_rgb(path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as e:
        raise EdgekdError(f"cannot read image {path} ({type(e).__name__}); remove or replace the file") from None


def _read_raw(path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im)  # palette PNGs stay as indices
    except Exception as e:
        raise EdgekdError(f"cannot read {path} ({type(e).__name__}); remove or replace the file") from None


def images_in(d: Path, recursive: bool = False) -> list[Path]:
    it = d.rglob("*") if recursive else d.glob("*")
    return sorted(p for p in it if p.suffix.lower() in IMAGE_EXT and p.is_file())


def _split_dir(root: Path, split: str) -> Path | None:
    names = ("train",) if split == "train" else VAL_NAMES
    return next((root / n for n in names if (root / n).is_dir()), None)


def _hash_split(paths: list[Path], split: str, val_fraction: float = 0.1) -> list[Path]:
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


def _too_few(root: Path, found: int, split: str) -> EdgekdError:
    return EdgekdError(f"{root} holds {found} image{'s' if found != 1 else ''}, too few for a {split} split: a folder without "
                       "train/ and val/ subfolders needs at least 2 (one to train on, one to validate)")


def _limit(items, n):
    return items if n is None else items[: int(n)]


class _Base:
    format = ""
    classes: list = []
    eval_crop_fraction = None

    def __len__(self):
        return len(self.items)


class NYUv2Mat(_Base):
    format = "nyu-mat"
    classes = []

    def __init__(self, path: Path, split: str, n=None):
        try:
            import h5py
        except ImportError:
            raise EdgekdError("reading NYUv2 .mat files needs h5py: pip install h5py") from None
        try:
            self.f = h5py.File(path, "r")
        except OSError:
            raise EdgekdError(f"{path} is not an HDF5 (MATLAB v7.3) file; give nyu_depth_v2_labeled.mat as downloaded") from None
        for key in ("images", "depths"):
            if key not in self.f:
                raise EdgekdError(f"{path} has no '{key}' dataset; it is not nyu_depth_v2_labeled.mat")
        total = self.f["images"].shape[0]
        train, test, self.official = _nyu_split(path, total)
        self.items = _limit(train if split == "train" else test, n)
        h, w = self.f["depths"].shape[2], self.f["depths"].shape[1]  # stored as (N, W, H)
        t, b, l, r = EIGEN_CROP
        self.eval_crop_fraction = (t / 480, b / 480, l / 640, r / 640) if (h, w) == (480, 640) else None
        self.path = path

    def __getitem__(self, i):
        k = self.items[i]
        # MATLAB stores column-major: h5py sees (N, C, W, H); transpose to (H, W, C).
        img = np.asarray(self.f["images"][k]).transpose(2, 1, 0)
        depth = np.asarray(self.f["depths"][k], np.float32).T
        s = {"image": np.ascontiguousarray(img.astype(np.uint8)), "depth": np.ascontiguousarray(depth)}
        if "labels" in self.f:
            lab = np.asarray(self.f["labels"][k]).T
            s["labels"] = np.where(lab > 254, 255, lab).astype(np.uint8)
        return s


def _nyu_split(path: Path, total: int):
    """Indices (0-based) of the official split from splits.mat or train.txt/test.txt beside the file."""
    d = path.parent
    sm = d / "splits.mat"
    if sm.exists():
        try:
            from scipy.io import loadmat
        except ImportError:
            raise EdgekdError("reading splits.mat needs scipy: pip install scipy (or write train.txt/test.txt with 1-based indices)") from None
        m = loadmat(str(sm))
        train = [int(x) - 1 for x in np.asarray(m["trainNdxs"]).ravel()]
        test = [int(x) - 1 for x in np.asarray(m["testNdxs"]).ravel()]
        return train, test, True
    if (d / "train.txt").exists() and (d / "test.txt").exists():
        read = lambda p: [int(x) - 1 for x in p.read_text().split()]  # noqa: E731
        return read(d / "train.txt"), read(d / "test.txt"), True
    import warnings

    warnings.warn(f"no splits.mat beside {path}: using a deterministic 795/654-proportion split, not the official one")
    idx = np.random.default_rng(0).permutation(total)
    cut = round(total * 795 / 1449)
    return sorted(idx[:cut].tolist()), sorted(idx[cut:].tolist()), False


class DepthList(_Base):
    """``rgb,depth`` rows (CSV or whitespace); paths relative to the list file; depth PNG in mm."""

    format = "depth-list"

    def __init__(self, path: Path, split: str, n=None):
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
        self.items = _limit(rows, n)

    def __getitem__(self, i):
        a, b = self.items[i]
        return {"image": _read_rgb(a), "depth": _read_raw(b).astype(np.float32) / 1000.0}


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


class VOCSegmentation(_Base):
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
        self.items = _limit(self.items, n)

    def __getitem__(self, i):
        img, mask = self.items[i]
        lab = _read_raw(mask)
        if lab.ndim == 3:
            raise EdgekdError(f"{mask} is an RGB image; VOC masks must be palette (P mode) PNGs of class indices")
        return {"image": _read_rgb(img), "labels": lab.astype(np.uint8)}


def _voc_root(root: Path) -> Path:
    if (root / "JPEGImages").is_dir():
        return root
    for sub in sorted(root.glob("VOC*")):
        if (sub / "JPEGImages").is_dir():
            return sub
    raise EdgekdError(f"{root} is not a VOC tree (no JPEGImages folder)")


class LabelMaps(_Base):
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
        self.items = _limit([(p, masks[p.stem]) for p in imgs], n)
        names = root / "classes.txt"
        if names.exists():
            self.classes = [x.strip() for x in names.read_text().splitlines() if x.strip()]
        else:  # the largest id found (255 = void) in a sample of the maps
            top = 0
            for _, m in self.items[:200]:
                lab = _read_raw(m)
                v = lab[lab != 255]
                top = max(top, int(v.max()) if v.size else 0)
            self.classes = [str(i) for i in range(top + 1)]

    def __getitem__(self, i):
        img, mask = self.items[i]
        return {"image": _read_rgb(img), "labels": _read_raw(mask).astype(np.uint8)}


def _split_sub(d: Path | None, split: str) -> Path:
    if d is None or not d.is_dir():
        raise EdgekdError(f"missing folder {d}; a label-map dataset needs images/ and annotations/ (or labels/)")
    sub = next((d / f"{s}{y}" for s in (("train",) if split == "train" else VAL_NAMES) for y in ("", "2017", "2014") if (d / f"{s}{y}").is_dir()), None)
    if sub is None:
        raise EdgekdError(f"{d} has no {'train' if split == 'train' else 'val'} subfolder")
    return sub


class Pix2Pix(_Base):
    """Aligned A|B images (pix2pix's layout): the left half is A, the right half B."""

    format = "pix2pix"

    def __init__(self, root: Path, split: str, n=None, direction: str = "AtoB"):
        d = _split_dir(root, split)
        if d is None:
            raise EdgekdError(f"{root} has no {'train' if split == 'train' else 'val/test'} folder of A|B images")
        self.items = _limit(images_in(d), n)
        if not self.items:
            raise EdgekdError(f"{d} holds no images")
        self.direction = direction

    def __getitem__(self, i):
        ab = _read_rgb(self.items[i])
        w = ab.shape[1] // 2
        if w == 0 or ab.shape[1] % 2:
            raise EdgekdError(f"{self.items[i]} is {ab.shape[1]} pixels wide: an aligned A|B image has an even width")
        a, b = ab[:, :w], ab[:, w:]
        if self.direction == "BtoA":
            a, b = b, a
        return {"image": np.ascontiguousarray(a), "target_image": np.ascontiguousarray(b)}


class ImageFolderPlain(_Base):
    """Any folder of images (colourisation needs nothing else)."""

    format = "image-folder"

    def __init__(self, root: Path, split: str, n=None):
        d = _split_dir(root, split)
        if d is None:
            found = images_in(root, recursive=True)
            items = _hash_split(found, split)
            if not items:
                raise _too_few(root, len(found), split)
        else:
            items = images_in(d, recursive=True)
        if not items:
            raise EdgekdError(f"{d} holds no images for the {split} split")
        self.items = _limit(items, n)

    def __getitem__(self, i):
        return {"image": _read_rgb(self.items[i])}


class ImageFolderClasses(_Base):
    """torchvision's ImageFolder layout: ``<split>/<class>/*.jpg`` (or ``<class>/*.jpg`` split by hash)."""

    format = "imagefolder"

    def __init__(self, root: Path, split: str, n=None):
        d = _split_dir(root, split)
        base = d if d is not None else root
        train_base = _split_dir(root, "train") or root
        self.classes = sorted(p.name for p in train_base.iterdir() if p.is_dir())
        if not self.classes:
            raise EdgekdError(f"{train_base} has no class folders; the layout is <split>/<class>/image.jpg")
        items, found = [], 0
        for k, c in enumerate(self.classes):
            files = images_in(base / c) if (base / c).is_dir() else []
            found += len(files)
            if d is None:
                files = _hash_split(files, split)
            items += [(f, k) for f in files]
        if not items and d is None and found:
            raise _too_few(root, found, split) if found < 2 else EdgekdError(
                f"{root}: each class folder holds a single image, so none is left for validation; add images or make train/ and val/ folders")
        if not items:
            raise EdgekdError(f"{base} holds no images in its class folders")
        # interleave classes so that --train-size N takes every class
        items.sort(key=lambda t: (hashlib.md5(t[0].name.encode()).hexdigest(), t[1]))
        self.items = _limit(items, n)
        self.object_classes = self.classes

    def __getitem__(self, i):
        f, k = self.items[i]
        return {"image": _read_rgb(f), "label": k}
