"""Student: a timm encoder (``features_only``) and a light U-Net decoder with skip connections.

The distilled features ``Z_s`` are the encoder's last feature map, taken right
after the encoder and before the decoder (paper §4.1, docs/method.md §1).  Which map that
is, is a named choice (``model.student_tap``):

* ``stage``: the last stage of timm's ``features_only`` encoder (MobileNetV2: the
  320-channel linear bottleneck, stride 32);
* ``head``: that stage followed by the architecture's head conv + BN + activation
  (MobileNetV2: 1280 channels, the end of torchvision's ``features``); the decoder
  then reads this map too, so the deployed network contains it.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import RunConfig
from ..errors import EdgekdError
from .timm_factory import create_timm


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

    def __init__(self, encoder_name: str, task, decoder_channels=(96, 64, 32, 24, 16), tap: str = "stage"):
        super().__init__()
        self.encoder_name, self.task, self.tap = encoder_name, task, tap
        try:
            self.encoder = create_timm(encoder_name, "student", features_only=True)
        except EdgekdError:
            raise
        except Exception as e:  # a timm model without feature extraction, or torchvision's operators missing
            from ..torch_stack import stack_problem

            problem = stack_problem(e)
            if problem:
                raise EdgekdError(problem) from None
            raise EdgekdError(f"student {encoder_name!r} cannot be used as an encoder ({str(e)[:120]}); pick a CNN such as mobilenetv2_100") from None
        chs = list(self.encoder.feature_info.channels())
        self.encoder_head = _head_conv(encoder_name) if tap == "head" else None
        if self.encoder_head is not None:
            chs[-1] = self.encoder_head[0].out_channels
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
        if self.encoder_head is not None:
            feats[-1] = self.encoder_head(feats[-1])
        z = feats[-1]
        if self.decoder is not None:
            out = self.head(self.decoder(feats, x.shape[-2:]))
        else:
            out = self.head(z.mean((2, 3)))
        out = self.task.activation(out)
        return (out, z) if return_features else out


def _head_conv(encoder_name: str) -> nn.Sequential:
    """The head conv (+ BN + activation) of a timm CNN, e.g. MobileNetV2's 320 -> 1280 1x1 conv."""
    full = create_timm(encoder_name, "student")
    conv, bn = getattr(full, "conv_head", None), getattr(full, "bn2", None)
    if not isinstance(conv, nn.Conv2d) or bn is None:
        raise EdgekdError(f"student {encoder_name} has no head conv to tap; use --student-tap stage")
    return nn.Sequential(conv, bn)


def load_student_weights(model: "EncoderDecoder", spec: str) -> int:
    """Initialise the encoder (and a tapped head conv) from ``spec``: a local file or ``imagenet``
    (the file inside an installed weights package, :mod:`edgekd.models.packaged`).

    The file is loaded into the full timm classifier first (torchvision, timm and efficientnet_pytorch
    key names are mapped by :func:`edgekd.models.weights.load_into`), then every encoder tensor is
    copied from it.  Returns the number of tensors loaded; anything partial is refused.
    """
    from .packaged import packaged_weights_path
    from .weights import load_into, read_state_dict

    if spec == "imagenet":
        from .packaged import imagenet_models

        imagenet = imagenet_models()
        if model.encoder_name not in imagenet:
            raise EdgekdError(f"no package ships ImageNet weights for student {model.encoder_name} (packaged: {', '.join(imagenet)}); "
                              f"give --student-weights FILE, or --student-weights none to start from random weights")
    path = packaged_weights_path(model.encoder_name) if spec == "imagenet" else spec
    full = create_timm(model.encoder_name, "student")
    load_into(full, read_state_dict(path, role="student"), str(path), role="student")
    src = full.state_dict()
    enc = model.encoder.state_dict()
    missing = [k for k in enc if k not in src or tuple(src[k].shape) != tuple(enc[k].shape)]
    if missing:
        raise EdgekdError(f"student weights {path}: {len(missing)} of {len(enc)} encoder tensors have no source of that shape "
                          f"(first: {missing[0]}); the file does not fit {model.encoder_name}")
    model.encoder.load_state_dict({k: src[k] for k in enc})
    n = sum(1 for k in enc if not k.endswith("num_batches_tracked"))
    if model.encoder_head is not None:
        model.encoder_head[0].load_state_dict(full.conv_head.state_dict())
        model.encoder_head[1].load_state_dict(full.bn2.state_dict())
        n += sum(1 for k in model.encoder_head.state_dict() if not k.endswith("num_batches_tracked"))
    return n


def check_image_size(image_size, stride: int, name: str) -> None:
    h, w = image_size
    if h % stride or w % stride:
        fix = (max(stride, round(h / stride) * stride), max(stride, round(w / stride) * stride))
        raise EdgekdError(
            f"image size {h}x{w} is not divisible by the stride {stride} of {name}; use --image-size {fix[0]} {fix[1]}"
        )


def create_student(cfg: RunConfig | dict, task, log=None) -> EncoderDecoder:
    """The configured student (``cfg``: a :class:`~edgekd.config.RunConfig` or its dict); ``model.student_weights``
    (``imagenet`` or a file) initialises its encoder."""
    cfg = RunConfig.coerce(cfg)
    m = cfg.model
    model = EncoderDecoder(m.student, task, m.decoder_channels, tap=m.student_tap)
    spec = (m.student_weights or "none").strip()
    if spec != "none":
        n = load_student_weights(model, spec)
        if log is not None:
            log(f"student {m.student}: {n} encoder tensors loaded from {spec}")
    check_image_size(cfg.data.image_size, model.stride, m.student)
    return model


def student_from_checkpoint(ckpt: dict, source: str = "checkpoint"):
    """Rebuild the student (and its task) a checkpoint was trained with, and load its weights; returns
    (student, task, the run's :class:`~edgekd.config.RunConfig`)."""
    from ..tasks import create_task

    if not isinstance(ckpt, dict) or ckpt.get("format") != "edgekd-checkpoint" or "student" not in ckpt:
        raise EdgekdError(f"{source} is not an edgekd checkpoint (no edgekd student weights in it); give a run's best.pt or last.pt")
    cfg = RunConfig.from_dict(ckpt["config"])
    check_finite_weights(ckpt["student"], source)
    task = create_task(cfg.model.task, **ckpt.get("task_args", {}))
    model = EncoderDecoder(cfg.model.student, task, cfg.model.decoder_channels, tap=cfg.model.student_tap)
    try:
        model.load_state_dict(ckpt["student"])
    except RuntimeError as e:
        raise EdgekdError(f"{source}: the student weights do not fit {cfg.model.student} ({str(e).splitlines()[0][:150]})") from None
    return model, task, cfg


def check_finite_weights(state: dict, source: str) -> None:
    """A damaged file or a diverged run: NaN/Inf weights are refused before anything is built or written from them."""
    bad = [k for k, v in state.items() if isinstance(v, torch.Tensor) and v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise EdgekdError(f"{source} holds NaN or infinite weights ({len(bad)} tensors, first: {bad[0]}); the file is damaged or "
                          "its run diverged: use another run's best.pt")
