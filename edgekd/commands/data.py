"""``edgekd data``: write the synthetic scenes to disk; what edgekd sees in a dataset folder."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import EdgekdError


def synth(out: str, n: int, val_n: int | None, image_size, seed: int, overwrite: bool) -> str:
    """Render the scenes into ``out``; returns the line that says what was written."""
    from tqdm.auto import tqdm

    from ..data.formats.edgekd_scenes import check_synth_target, write_scenes

    if n < 1:
        raise EdgekdError("--n must be at least 1")
    if val_n is not None and val_n < 1:
        raise EdgekdError(f"--val-n {val_n}: the validation split needs at least 1 scene")
    check_synth_target(out, overwrite)  # before the progress bar: a refusal stays one line
    total = n + (val_n if val_n is not None else max(1, n // 4))
    with tqdm(total=total, unit="img", desc="rendering", disable=not sys.stderr.isatty()) as bar:
        meta = write_scenes(out, n, image_size, seed, val_n, progress=bar.update, overwrite=overwrite)
    return f"wrote {meta['counts']['train']} train + {meta['counts']['val']} val scenes to {out}; train on them with --data {out}"


def inspect(path: str, task: str | None, data_format: str, depth_scale: float, max_samples: int) -> dict:
    """Format, splits and their sizes, what each sample holds, depth range and classes of the data at ``path``."""
    from ..data import open_dataset
    from ..data.formats import matching_formats

    info = {"path": path}
    if task is None and data_format == "auto" and Path(path).exists() and path != "synthetic":
        info["formats"] = matching_formats(Path(path).expanduser())
    for split in ("train", "val"):
        ds = open_dataset(path, split, (64, 64), None, 0, data_format, task=task, depth_scale=depth_scale)
        info["format"] = ds.format
        info[split] = _inspect_split(ds, max_samples)
        if hasattr(ds, "official"):
            info["official_split"] = bool(ds.official)
    if 0 < info["val"]["samples"] < 8:
        info["warning"] = (f"the validation split has {info['val']['samples']} samples: too few to judge a model by; give it at least 8 "
                           "(a val/ or test/ folder or list; a folder without them keeps about 10% for validation)")
    info["classes"] = list(getattr(ds, "classes", []) or [])
    return info


def _inspect_split(ds, max_samples: int) -> dict:
    """Sizes, what a sample holds, and the depth range over the samples read (all, or the first ``max_samples``)."""
    import numpy as np

    s = ds[0]
    out = {"samples": len(ds), **{k: (list(np.shape(v)) if np.ndim(v) else type(v).__name__) for k, v in s.items()}}
    n = min(len(ds), max_samples)
    lo, hi, shapes = np.inf, 0.0, set()
    for i in range(n):
        sample = s if i == 0 else ds[i]
        shapes.add(tuple(np.shape(sample["image"])[:2]))
        if "depth" in sample:
            d = np.asarray(sample["depth"])
            if (d > 0).any():
                lo, hi = min(lo, float(d[d > 0].min())), max(hi, float(d.max()))
    if "depth" in s:
        out["depth_range_m"] = [lo if np.isfinite(lo) else 0.0, hi]
    out["read"] = f"all {n} samples" if n == len(ds) else f"the first {n} of {len(ds)} samples"
    out["image_sizes"] = sorted(f"{h}x{w}" for h, w in shapes)[:10]
    return out
