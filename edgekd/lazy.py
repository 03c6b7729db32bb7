"""Registry entries named as ``"package.module:attribute"`` and imported on first use.

Every registry (tasks, distances, data formats, export steps, teacher kinds) lists its names
without importing torch or numpy, so the CLI starts fast and ``edgekd bench`` stays torch-free.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Union

Target = Union[str, Callable]  # a callable, or "package.module:attribute" imported on first use


def resolve(target: Target) -> Any:
    """The object ``target`` names (a callable is returned as it is)."""
    if callable(target):
        return target
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)
