"""Measurements that never change the run they measure (issue 24).

A probe of the training module (gradient ratios, the projector's fit, the ``--projection auto``
measurement) runs the student's forward pass, which in train mode updates BatchNorm's running
statistics, and the spectral term, which refreshes its warm-started subspace ``V``; a layer that
draws random numbers would also advance torch's generator.  :func:`unchanged` snapshots every buffer
and the generators and puts them back *in place* (a captured CUDA graph keeps reading the same
memory), so a run with a probe is bitwise the run without it (``tests/train/test_probes.py``).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

# Buffers a probe is allowed to change on purpose: the loss weights that ``auto`` strength re-measures.
_KEPT = ("loss_weights",)


def _buffers(module: torch.nn.Module) -> dict:
    return {name: buf for name, buf in module.named_buffers() if name.rsplit(".", 1)[-1] not in _KEPT}


def _restore(module: torch.nn.Module, name: str, saved: torch.Tensor) -> None:
    owner_name, _, attr = name.rpartition(".")
    owner = module.get_submodule(owner_name) if owner_name else module
    current = owner._buffers[attr]
    if current is not None and current.shape == saved.shape and current.dtype == saved.dtype:
        current.copy_(saved)
    else:  # e.g. the spectral subspace, still empty before the first step: put the empty buffer back
        owner._buffers[attr] = saved


@contextmanager
def unchanged(*modules: torch.nn.Module, device: torch.device | None = None):
    """Restore every buffer of ``modules`` and torch's random generators (CPU, and ``device``'s) on exit."""
    saved = [(m, {k: v.detach().clone() for k, v in _buffers(m).items()}) for m in modules if m is not None]
    devices = [device] if device is not None and device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        try:
            yield
        finally:
            for m, bufs in saved:
                for name, value in bufs.items():
                    _restore(m, name, value)
