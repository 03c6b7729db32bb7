"""Frozen teachers: random, timm with local weights, or an edgekd checkpoint of another task.

The teacher is frozen by construction (mdistiller's manner): its parameters do
not require grad, it stays in eval mode through ``.train()``, it runs under
``no_grad`` and only its encoder is evaluated.  A classification teacher loses
its pooling and head; a ViT's patch tokens (prefix tokens dropped) come back as
a (C, h', w') grid (paper §4.1).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn

from ..errors import EdgekdError


class FrozenTeacher(nn.Module):
    def __init__(self, encoder: nn.Module, channels: int, name: str, kind: str):
        super().__init__()
        self.encoder = encoder
        self.channels, self.name, self.kind = int(channels), name, kind
        for p in self.parameters():
            p.requires_grad_(False)
        super().train(False)

    def train(self, mode: bool = True):  # noqa: D401 - eval mode survives .train()
        return super().train(False)

    @torch.no_grad()
    def forward(self, x):
        return self.encoder(x)


TEACHER_TAPS = ("norm", "raw")


class _TimmLastFeatures(nn.Module):
    """The last feature map of a full timm model via ``forward_intermediates`` (no pooling, no head).

    ``tap="norm"`` (default) applies the model's final norm, as its own head would see the tokens:
    without it, 77% of a random ViT-B/32's feature energy lies in one direction, which an MSE then
    mostly chases (issue 10).  CNNs whose ``forward_intermediates`` has no final norm are unaffected.
    """

    def __init__(self, model, tap: str = "norm"):
        super().__init__()
        self.model, self.tap = model, tap

    def forward(self, x):
        return self.model.forward_intermediates(x, indices=1, intermediates_only=True, norm=self.tap == "norm")[-1]


class _StudentEncoder(nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, x):
        return self.encoder(x)[-1]


def _timm_teacher(name: str, weights: str | None, kind: str, tap: str = "norm") -> FrozenTeacher:
    from .timm_names import create_timm

    model = create_timm(name, "teacher")
    if weights:
        from .weights import load_into, read_state_dict

        load_into(model, read_state_dict(weights), weights)
    enc = _TimmLastFeatures(model, tap).eval()  # eval before probing: a train-mode forward would move BatchNorm statistics
    with torch.no_grad():
        channels = enc(torch.zeros(1, 3, 64, 64)).shape[1]
    return FrozenTeacher(enc, channels, name, kind)


def create_teacher(spec: str, default_arch: str, weights: str | None = None, tap: str = "norm") -> FrozenTeacher | None:
    """``none`` | ``random`` | ``random:NAME`` | ``NAME`` (with ``weights``) | path to an edgekd checkpoint."""
    spec = (spec or "none").strip()
    if spec == "none":
        return None
    if spec == "random":
        return _timm_teacher(default_arch, None, "random", tap)
    if spec.startswith("random:"):
        return _timm_teacher(spec.split(":", 1)[1], None, "random", tap)
    p = Path(spec).expanduser()
    if p.suffix in (".pt", ".pth") or p.exists() or "/" in spec:
        from ..fileio import load_checkpoint
        from .student import student_from_checkpoint

        if not p.exists():
            raise EdgekdError(f"teacher checkpoint {p} does not exist; train one with edgekd distill, or use --teacher random")
        ckpt = load_checkpoint(p)
        student, task, _ = student_from_checkpoint(ckpt, str(p))
        return FrozenTeacher(_StudentEncoder(student.encoder), student.feature_channels, str(p), f"edgekd:{task.name}")
    if not weights:
        raise EdgekdError(
            f"teacher {spec!r} needs --teacher-weights FILE (nothing is downloaded); use --teacher random:{spec} for a randomly initialised one"
        )
    if weights == "imagenet":
        from .packaged import packaged_weights_path

        weights = str(packaged_weights_path(spec))
    return _timm_teacher(spec, weights, "pretrained", tap)
