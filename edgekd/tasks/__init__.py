"""Task registry: one file per task, each with its head's output, loss and metrics.

Torch-free at import (losses import torch inside), so the bench can compute a
task's metrics on a device without torch.  In the manner of timm's
``register_model`` / ``create_model``.
"""

from __future__ import annotations

from ..errors import EdgekdError

_TASKS: dict[str, type] = {}


def register_task(cls):
    _TASKS[cls.name] = cls
    return cls


def list_tasks() -> list[str]:
    _load_all()
    return sorted(_TASKS)


def create_task(name: str, **kwargs):
    _load_all()
    if name not in _TASKS:
        raise EdgekdError(f"unknown task {name!r}; use one of: {', '.join(sorted(_TASKS))}")
    return _TASKS[name](**kwargs)


def _load_all():
    from . import classification, colourisation, depth, segmentation, translation  # noqa: F401
