"""Distillation as drop-in pieces for your own training loop.

>>> from edgekd.distill import Projector, fitnet_loss, spectral_loss
>>> P = Projector(teacher_channels, student_channels)          # inverted: teacher -> student
>>> loss = task_loss + w * fitnet_loss(z_s, P(z_t)) + spectral_loss(z_s, r=2)

See the README's "Python API" section for a complete loop.  The names are imported on first use
(PEP 562), so that :mod:`edgekd.distill.registry`, which the CLI reads, does not import torch.
"""

from __future__ import annotations

import importlib

from .registry import (
    create_distance, get_distance, get_projection, list_distances, list_projections, register_distance,
    register_projection,
)

_LAZY = {  # name -> the submodule that defines it (imports torch)
    "Projector": "projector", "ProjectorEnsemble": "ensemble", "Distiller": "distiller",
    "fitnet_loss": "fitnet", "at_loss": "at", "attention_map": "at", "pkt_loss": "pkt", "ensemble_loss": "ensemble",
    "spectral_loss": "spectral", "spectral_loss_exact": "spectral", "SpectralRegulariser": "spectral",
}

__all__ = [
    *_LAZY, "register_distance", "create_distance", "get_distance", "list_distances",
    "register_projection", "get_projection", "list_projections",
]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
