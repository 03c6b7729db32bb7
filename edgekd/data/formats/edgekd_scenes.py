"""``edgekd-scenes``: the procedural scenes as files, written by ``edgekd data synth`` and read back.

``DIR/edgekd-data.json`` (classes, seed, counts) and ``DIR/<split>/{images,depth,labels}/NNNNN.png``
with ``DIR/<split>/image_labels.csv``; depth in millimetres (uint16 PNG).
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np

from ...errors import EdgekdError
from ..scene_render import CLASSES, OBJECT_CLASSES, PALETTE, render_scene

SCENES_FORMAT = "edgekd-scenes"
META_FILE = "edgekd-data.json"


def detect(path: Path) -> bool:
    return (path / META_FILE).exists()


class SceneFolder:
    """Scenes written by ``edgekd data synth`` (``DIR/<split>/{images,depth,labels}/NNNNN.png``)."""

    format = SCENES_FORMAT

    def __init__(self, root, split: str, n: int | None = None):
        root = Path(root)
        meta = json.loads((root / META_FILE).read_text())
        self.classes = meta["classes"]
        self.object_classes = meta["object_classes"]
        d = root / split
        if not (d / "images").is_dir():
            raise EdgekdError(f"{root} has no {split}/images folder; write it with: edgekd data synth --out {root}")
        self.files = sorted((d / "images").glob("*.png"))
        if not self.files:
            raise EdgekdError(f"{d / 'images'} holds no PNG images; write scenes with: edgekd data synth --out {root}")
        if n is not None:
            self.files = self.files[: int(n)]
        self.root, self.split = root, split
        with open(d / "image_labels.csv") as f:
            self.image_labels = {row["file"]: int(row["label"]) for row in csv.DictReader(f)}
        for f in self.files:
            for sub in ("depth", "labels"):
                if not (d / sub / f.name).exists():
                    raise EdgekdError(f"{f} has no matching {sub}/{f.name}; images and {sub} must pair one to one")

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i: int) -> dict:
        from .common import read_depth_png, read_raw, read_rgb

        f = self.files[i]
        d = self.root / self.split
        labels = read_raw(d / "labels" / f.name)
        return {
            "image": read_rgb(f),
            "depth": read_depth_png(d / "depth" / f.name),
            "labels": labels,
            "colour_map": PALETTE[np.minimum(labels, len(PALETTE) - 1)],
            "label": self.image_labels.get(f.name, 0),
        }


def write_scenes(out, n: int, image_size, seed: int = 0, val_n: int | None = None, progress=None, overwrite: bool = False) -> dict:
    """Render ``n`` train and ``val_n`` validation scenes into ``out`` in the :class:`SceneFolder` layout.

    The scenes are rendered into a temporary folder beside ``out`` that replaces it only when complete:
    an interrupted run leaves ``out`` as it was, and old and new scenes never mix.
    """
    import shutil
    import tempfile

    out = Path(out)
    val_n = max(1, n // 4) if val_n is None else val_n
    if n < 1 or val_n < 1:
        raise EdgekdError(f"{'--n' if n < 1 else '--val-n'} must be at least 1 (each split needs a scene)")
    check_synth_target(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes a private folder; the scenes get the usual permissions
    try:
        meta = _render_into(tmp, n, val_n, image_size, seed, progress)
        if out.exists():
            old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
            os.replace(out, old / "scenes")
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return meta


def check_synth_target(out, overwrite: bool) -> Path:
    """Refuse an ``--out`` that cannot take the scenes: not creatable, or holding files (without ``overwrite``)."""
    from ...fileio import check_out_dir

    out = check_out_dir(out)
    if not out.is_dir() or not any(out.iterdir()):
        return out
    if not overwrite:
        raise EdgekdError(f"{out} is not empty; add --overwrite to replace the scenes in it, or choose an empty --out")
    if not (out / META_FILE).exists():
        raise EdgekdError(f"{out} holds files that edgekd data synth did not write (no {META_FILE}); --overwrite replaces only "
                          "a scenes folder: choose an empty --out")
    return out


def _render_into(out: Path, n: int, val_n: int, image_size, seed: int, progress) -> dict:
    from PIL import Image

    counts = {}
    for split, count in (("train", n), ("val", val_n)):
        d = out / split
        for sub in ("images", "depth", "labels"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        rows = []
        for i in range(count):
            s = render_scene(image_size[0], image_size[1], seed, split, i)
            name = f"{i:05d}.png"
            Image.fromarray(s["image"]).save(d / "images" / name)
            Image.fromarray((s["depth"] * 1000).round().astype(np.uint16)).save(d / "depth" / name)
            Image.fromarray(s["labels"]).save(d / "labels" / name)
            rows.append({"file": name, "label": s["label"]})
            if progress:
                progress(1)
        with open(d / "image_labels.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["file", "label"])
            w.writeheader()
            w.writerows(rows)
        counts[split] = count
    meta = {"format": SCENES_FORMAT, "classes": list(CLASSES), "object_classes": list(OBJECT_CLASSES),
            "depth_unit": "mm (uint16 PNG)", "seed": seed, "image_size": list(image_size), "counts": counts}
    (out / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return meta
