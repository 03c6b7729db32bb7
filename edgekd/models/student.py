"""Student: a timm encoder (``features_only``) and a light U-Net decoder with skip connections.

The distilled features ``Z_s`` are the encoder's last feature map, taken right
after the encoder and before the decoder (paper §4.1, DESIGN.md §1).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import EdgekdError
from .timm_names import create_timm


def _conv_bn_relu(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class UNetDecoder(nn.Module):
    """Upsample x2, concatenate the skip of that stride, conv-BN-ReLU; a last block at full resolution."""

    def __init__(self, encoder_channels: list[int], decoder_channels: list[int]):
        super().__init__()
        skips = encoder_channels[:-1][::-1]  # deepest skip first
        n = min(len(skips), len(decoder_channels) - 1)
        self.blocks = nn.ModuleList()
        cin = encoder_channels[-1]
        for i in range(n):
            self.blocks.append(_conv_bn_relu(cin + skips[i], decoder_channels[i]))
            cin = decoder_channels[i]
        self.final = _conv_bn_relu(cin, decoder_channels[n])
        self.out_channels = decoder_channels[n]

    def forward(self, feats: list[torch.Tensor], size) -> torch.Tensor:
        x = feats[-1]
        skips = feats[:-1][::-1]
        for block, skip in zip(self.blocks, skips):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        return self.final(x)


class EncoderDecoder(nn.Module):
    """``forward(x)`` gives the task output; ``forward(x, return_features=True)`` also gives ``Z_s``."""

    def __init__(self, encoder_name: str, task, decoder_channels=(96, 64, 32, 24, 16)):
        super().__init__()
        self.encoder_name = encoder_name
        self.task = task
        try:
            self.encoder = create_timm(encoder_name, "student", features_only=True)
        except EdgekdError:
            raise
        except Exception as e:  # a timm model without feature extraction
            raise EdgekdError(f"student {encoder_name!r} cannot be used as an encoder ({str(e)[:120]}); pick a CNN such as mobilenetv2_100") from None
        chs = self.encoder.feature_info.channels()
        self.feature_channels = chs[-1]
        self.stride = self.encoder.feature_info.reduction()[-1]
        if task.dense:
            self.decoder = UNetDecoder(chs, list(decoder_channels))
            self.head = nn.Conv2d(self.decoder.out_channels, task.out_channels, 3, padding=1)
        else:
            self.decoder = None
            self.head = nn.Linear(chs[-1], task.out_channels)

    def forward(self, x, return_features: bool = False):
        feats = self.encoder(x)
        z = feats[-1]
        if self.decoder is not None:
            out = self.head(self.decoder(feats, x.shape[-2:]))
        else:
            out = self.head(z.mean((2, 3)))
        out = self.task.activation(out)
        return (out, z) if return_features else out


def check_image_size(image_size, stride: int, name: str) -> None:
    h, w = image_size
    if h % stride or w % stride:
        fix = (max(stride, round(h / stride) * stride), max(stride, round(w / stride) * stride))
        raise EdgekdError(
            f"image size {h}x{w} is not divisible by the stride {stride} of {name}; use --image-size {fix[0]} {fix[1]}"
        )


def create_student(cfg: dict, task) -> EncoderDecoder:
    model = EncoderDecoder(cfg["model"]["student"], task, cfg["model"]["decoder_channels"])
    check_image_size(cfg["data"]["image_size"], model.stride, cfg["model"]["student"])
    return model


def student_from_checkpoint(ckpt: dict, source: str = "checkpoint"):
    """Rebuild the student (and its task) a checkpoint was trained with, and load its weights."""
    from ..tasks import create_task

    if not isinstance(ckpt, dict) or ckpt.get("format") != "edgekd-checkpoint" or "student" not in ckpt:
        raise EdgekdError(f"{source} is not an edgekd checkpoint (no edgekd student weights in it); give a run's best.pt or last.pt")
    cfg = ckpt["config"]
    task = create_task(cfg["model"]["task"], **ckpt.get("task_args", {}))
    model = EncoderDecoder(cfg["model"]["student"], task, cfg["model"]["decoder_channels"])
    try:
        model.load_state_dict(ckpt["student"])
    except RuntimeError as e:
        raise EdgekdError(f"{source}: the student weights do not fit {cfg['model']['student']} ({str(e).splitlines()[0][:150]})") from None
    return model, task, cfg
