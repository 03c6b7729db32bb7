"""Student (timm encoder + light decoder) and frozen teachers.

Names are imported on first use (PEP 562), so that the torch-free parts (the teacher-kind registry,
the packaged-weights table) can be read by the CLI's ``--help`` without importing torch.
"""

from importlib import import_module

_EXPORTS = {
    "EncoderDecoder": "student", "create_student": "student", "student_from_checkpoint": "student",
    "FrozenTeacher": "teacher", "create_teacher": "teacher",
    "register_teacher_kind": "teacher_kinds", "list_teacher_kinds": "teacher_kinds",
    "packaged_weights_path": "packaged",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
