"""Frozen teachers: random, timm with local or packaged weights, an edgekd checkpoint of another task (ONNX: onnx_teacher.py, HED: hed.py).

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


def _wrap_input(encoder: nn.Module, norm: str | None) -> nn.Module:
    """Prepend the teacher's own normalisation when it is not edgekd's ImageNet one."""
    if not norm or norm.strip() == "imagenet":
        return encoder
    from .teacher_input import TeacherInput, parse_norm

    return nn.Sequential(TeacherInput(parse_norm(norm)), encoder)


def _no_layer(req, kind: str) -> None:
    if req.layer:
        raise EdgekdError(f"--teacher-layer applies to ONNX and HED teachers, not to a {kind} teacher; drop it")


def _resolve_weights(name: str, weights: str) -> str:
    """``imagenet`` -> the file a pip package ships for ``name`` (see packaged.py); else the path as given."""
    if weights.strip().lower() != "imagenet":
        return weights
    from .packaged import imagenet_models, packaged_weights_path

    imagenet = imagenet_models()
    if name not in imagenet:
        raise EdgekdError(f"no package ships ImageNet weights for {name!r} (packaged: {', '.join(imagenet)}); give --teacher-weights FILE")
    return str(packaged_weights_path(name))


def _timm_teacher(name: str, weights: str | None, kind: str, norm: str | None = None, tap: str = "norm") -> FrozenTeacher:
    from .timm_factory import create_timm

    weights = _resolve_weights(name, weights) if weights else None  # before building: a missing package fails fast
    model = create_timm(name, "teacher")
    if weights:
        from .weights import load_into, read_state_dict

        load_into(model, read_state_dict(weights), weights)
    enc = _wrap_input(_TimmLastFeatures(model, tap), norm).eval()  # eval before probing: a train-mode forward would move BatchNorm statistics
    with torch.no_grad():
        channels = enc(torch.zeros(1, 3, 64, 64)).shape[1]
    return FrozenTeacher(enc, channels, name, kind)


def build_random(req) -> FrozenTeacher:
    _no_layer(req, "random")
    name = req.spec.split(":", 1)[1] if req.spec.startswith("random:") else req.default_arch
    return _timm_teacher(name, None, "random", req.norm, req.tap)


def build_timm(req) -> FrozenTeacher:
    import timm

    _no_layer(req, "timm")
    spec = req.spec
    if not timm.is_model(spec):
        from .teacher_kinds import teacher_kinds_help
        from .timm_factory import check_timm_name

        try:
            check_timm_name(spec, "teacher")
        except EdgekdError as e:
            raise EdgekdError(f"{e}; --teacher takes {teacher_kinds_help()}") from None
    if not req.weights:
        raise EdgekdError(
            f"teacher {spec!r} needs --teacher-weights FILE or imagenet (nothing is downloaded); use --teacher random:{spec} for a randomly initialised one"
        )
    return _timm_teacher(spec, req.weights, "pretrained", req.norm, req.tap)


def build_checkpoint(req) -> FrozenTeacher:
    from ..fileio import load_checkpoint
    from .student import student_from_checkpoint

    _no_layer(req, "edgekd checkpoint")
    p = Path(req.spec).expanduser()
    if not p.exists():
        raise EdgekdError(f"teacher checkpoint {p} does not exist; train one with edgekd distill, or use --teacher random")
    ckpt = load_checkpoint(p)
    student, task, _ = student_from_checkpoint(ckpt, str(p))
    enc = _wrap_input(_StudentEncoder(student.encoder), req.norm)
    return FrozenTeacher(enc, student.feature_channels, str(p), f"edgekd:{task.name}")


def create_teacher(spec: str, default_arch: str, weights: str | None = None, layer: str | None = None,
                   norm: str | None = None, stride: int = 32, tap: str = "norm") -> FrozenTeacher | None:
    """``none``, or any kind in the registry (teacher_kinds.py): random, random:NAME, timm NAME with
    ``weights`` (a file or ``imagenet``), an edgekd checkpoint, an ONNX file, ``ppocr-det``, ``hed``.

    ``layer`` picks the feature output of an ONNX/HED teacher, ``norm`` the input normalisation the teacher
    expects (teacher_input.py), ``stride`` the student's feature stride (the automatic layer matches it).
    """
    from .teacher_kinds import TeacherRequest, find_teacher_kind

    spec = (spec or "none").strip()
    if spec == "none":
        return None
    req = TeacherRequest(spec, default_arch, weights or None, layer or None, norm or None, int(stride), tap)
    return find_teacher_kind(spec).build(req)
