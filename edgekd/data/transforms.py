"""Numpy transforms shared by training and the torch-free bench.

Normalisation constants live here so that export metadata, training and the
bench agree on them.
"""

from __future__ import annotations

import numpy as np

MEAN = (0.485, 0.456, 0.406)  # ImageNet statistics: what timm encoders expect
STD = (0.229, 0.224, 0.225)

def normalise(image: np.ndarray, mean=MEAN, std=STD) -> np.ndarray:
    """(H, W, 3) uint8 -> (3, H, W) float32, ImageNet-normalised."""
    x = image.astype(np.float32) / 255.0
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


# The geometric transforms move the per-pixel maps a task declares (``Task.sample_keys``: each key's
# name, ``resize`` = "bilinear" | "nearest" and ``flip`` = "mirror" | "vector"); the caller passes them.

def _resize(a: np.ndarray, height: int, width: int, how: str) -> np.ndarray:
    from PIL import Image  # only when something needs resizing: the bench may run without Pillow

    mode = Image.BILINEAR if how == "bilinear" else Image.NEAREST
    if a.dtype == np.uint8 and (a.ndim == 2 or a.shape[2] == 3):
        return np.asarray(Image.fromarray(a).resize((width, height), mode))
    if a.ndim == 2:
        return np.asarray(Image.fromarray(a.astype(np.float32), mode="F").resize((width, height), mode))
    return np.stack([_resize(np.ascontiguousarray(a[..., c]), height, width, how) for c in range(a.shape[2])], axis=2)


def resize_sample(sample: dict, height: int, width: int, keys) -> dict:
    """Resize every per-pixel map in ``keys`` as it says (bilinear pictures, nearest depth and labels)."""
    out = dict(sample)
    for key in keys:
        a = sample.get(key.name)
        if a is not None and a.shape[:2] != (height, width):
            out[key.name] = _resize(a, height, width, key.resize)
    return out


def random_crop(sample: dict, rng: np.random.Generator, keys, min_area: float = 0.6) -> dict:
    """The same random crop (60-100% of the area, aspect 3/4-4/3) of every per-pixel map in ``keys``."""
    h, w = sample["image"].shape[:2]
    area = rng.uniform(min_area, 1.0) * h * w
    aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    ch = int(min(h, round(np.sqrt(area / aspect))))
    cw = int(min(w, round(np.sqrt(area * aspect))))
    top, left = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    out = dict(sample)
    for key in keys:
        if key.name in out:
            out[key.name] = np.ascontiguousarray(out[key.name][top : top + ch, left : left + cw])
    return out


def flip_sample(sample: dict, keys) -> dict:
    """The horizontal mirror image of every per-pixel map in ``keys``; a vector field's x component changes sign."""
    out = dict(sample)
    for key in keys:
        if key.name in out:
            a = np.array(out[key.name][:, ::-1])
            if key.flip == "vector":
                a[..., 0] = -a[..., 0]
            out[key.name] = np.ascontiguousarray(a)
    return out


def augment(sample: dict, rng: np.random.Generator, keys, crop: bool = False) -> dict:
    """Horizontal flip and (optionally) a random crop of the maps in ``keys`` together; colour jitter of the RGB input only.

    Depth is not cropped-and-rescaled by default: zooming changes the apparent focal length, so the
    metric depth of a zoomed image would be wrong."""
    out = random_crop(sample, rng, keys) if crop else dict(sample)
    out["flipped"] = bool(rng.random() < 0.5)
    if out["flipped"]:
        out = flip_sample(out, keys)
    out["geometric_image"] = out["image"]  # before colour jitter: what a frozen teacher sees (train/data.py)
    img = out["image"].astype(np.float32)
    brightness, contrast, saturation = rng.uniform(0.8, 1.2, 3)
    img = img * brightness
    mean = img.mean()
    img = (img - mean) * contrast + mean
    grey = img.mean(axis=2, keepdims=True)
    img = (img - grey) * saturation + grey
    out["image"] = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    return out
