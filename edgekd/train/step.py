"""One training step, the same for the eager path and ``--compile`` (train/compile.py wraps it).

A step: the frozen teacher's features for the batch (cached, or on a CUDA side stream that overlaps
the student's forward pass), then forward, backward and the optimiser step of the trained module.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch


class PendingFeatures:
    """Teacher features being computed on another CUDA stream; ``get()`` makes the caller's stream wait."""

    def __init__(self, tensor, stream):
        self.tensor, self.stream = tensor, stream

    def get(self):
        cur = torch.cuda.current_stream(self.tensor.device)
        cur.wait_stream(self.stream)
        if not torch.cuda.is_current_stream_capturing():
            self.tensor.record_stream(cur)  # the caching allocator must not reuse it while the main stream reads it
        return self.tensor


class TeacherFeatures:
    """``features(x, keys)``: the frozen teacher's ``Z_t`` for a batch (``None`` without a teacher).

    With a cache, known (scene, flip) keys skip the teacher; on CUDA the teacher runs on a side
    stream and the result is a :class:`PendingFeatures` the student waits for only where the
    distillation term needs it; otherwise a tensor.
    """

    def __init__(self, teacher, device: torch.device, dtype: torch.dtype, cache=None):
        self.teacher, self.device, self.dtype, self.cache = teacher, device, dtype, cache
        self._stream = None  # created on first use: only CUDA runs need it

    def compute(self, x):
        """The teacher's features, now, on the current stream."""
        if self.teacher is None:
            return None
        # The teacher's weights already have the compute dtype (bf16 on GPU): no autocast needed.
        with torch.no_grad():
            return self.teacher(x.to(self.dtype))

    def features(self, x, keys=None):
        if self.teacher is not None and self.cache is not None and keys is not None:
            return self.cache.features(x, keys, self.compute)
        if self.teacher is None or self.device.type != "cuda":
            return self.compute(x)
        if self._stream is None:
            self._stream = torch.cuda.Stream(self.device)
        side = self._stream
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            zt = self.compute(x)
        return PendingFeatures(zt, side)


def mixed_precision(amp_dtype, cache_enabled=None):
    """bf16 autocast on CUDA (``amp_dtype``), nothing on CPU; ``cache_enabled=False`` inside CUDA graph captures."""
    return torch.autocast("cuda", dtype=amp_dtype, cache_enabled=cache_enabled) if amp_dtype else nullcontext()


@dataclass
class StepParts:
    """What a step touches: the trained module (DDP-wrapped or compiled), its optimiser, the teacher."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    teacher: TeacherFeatures
    amp_dtype: torch.dtype | None


def train_step(parts: StepParts, x, y, xt=None, keys=None, *, grads_to_none: bool = True, autocast_cache=None):
    """One optimiser step on (x, y); the teacher sees ``xt`` (its view, default ``x``).  Returns the detached
    total loss and terms.  A CUDA graph capture passes ``grads_to_none=False`` (gradients stay in place)
    and ``autocast_cache=False`` (autocast's weight-cast cache must not outlive a capture)."""
    zt = parts.teacher.features(x if xt is None else xt, keys)
    parts.optimizer.zero_grad(set_to_none=grads_to_none)
    with mixed_precision(parts.amp_dtype, autocast_cache):
        total, losses = parts.model(x, y, zt)
    total.backward()
    parts.optimizer.step()
    return total.detach(), {k: v.detach() for k, v in losses.items()}
