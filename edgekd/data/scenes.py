"""Datasets of synthetic scenes: rendered on the fly, or read back from ``edgekd data synth`` output."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np

from ..errors import EdgekdError
from .synthetic import CLASSES, OBJECT_CLASSES, PALETTE, render_scene

SCENES_FORMAT = "edgekd-scenes"
META_FILE = "edgekd-data.json"


class SyntheticScenes:
    """``n`` scenes of ``split`` rendered at ``image_size``; scene ``i`` is a pure function of (seed, split, i).

    The same ``n`` scenes are seen every epoch: a finite training set, like a
    real dataset (the paper's regularisation effects only show there).
    """

    format = "synthetic"

    def __init__(self, split: str, n: int, image_size, seed: int = 0, cache: bool = True):
        self.split, self.n, self.seed = split, int(n), int(seed)
        self.height, self.width = int(image_size[0]), int(image_size[1])
        self.classes = list(CLASSES)
        self.object_classes = list(OBJECT_CLASSES)
        self._cache = {} if cache else None

    def __len__(self):
        return self.n

    def prerender(self, workers: int = 0) -> None:
        """Render every scene once into the cache, in ``workers`` processes.

        Done before the data loader starts, so its forked workers share the
        cache and training never waits for the ray caster.
        """
        if self._cache is None:
            return
        todo = [i for i in range(self.n) if i not in self._cache]
        if not todo:
            return
        args = [(self.height, self.width, self.seed, self.split, i) for i in todo]
        if workers > 1 and len(todo) > 8:
            import multiprocessing as mp

            with mp.get_context("fork").Pool(workers) as pool:
                scenes = pool.starmap(render_scene, args, chunksize=max(1, len(todo) // (4 * workers)))
        else:
            scenes = [render_scene(*a) for a in args]
        self._cache.update(zip(todo, scenes))

    def __getitem__(self, i: int) -> dict:
        if i < 0 or i >= self.n:
            raise IndexError(i)
        if self._cache is not None and i in self._cache:
            return self._cache[i]
        s = render_scene(self.height, self.width, self.seed, self.split, i)
        if self._cache is not None:
            self._cache[i] = s
        return s


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
        from PIL import Image

        f = self.files[i]
        d = self.root / self.split
        labels = np.asarray(Image.open(d / "labels" / f.name))
        return {
            "image": np.asarray(Image.open(f).convert("RGB")),
            "depth": np.asarray(Image.open(d / "depth" / f.name)).astype(np.float32) / 1000.0,
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
    from ..fileio import check_out_dir

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
