"""Frozen-teacher features computed once per (scene, flip) and reused every epoch (issue 11).

A frozen teacher in eval mode is a fixed function of its input; when the input depends only on
the scene and the flip (no random crop; the colour jitter is the student's alone, see
:class:`edgekd.train.data.TaskDataset`), its features can be kept.  On a CPU the teacher's
forward pass is most of a cross-task step (a ViT-B/32 is ~20x a MobileNetV2's FLOPs), so caching
makes a cross-task run cost about as much as a student-only run.  Memory: one
(C, h, w) tensor per key, in the teacher's dtype, on the training device.
"""

from __future__ import annotations

import torch


class TeacherCache:
    """``features(xt, keys, compute)``: cached rows where known, ``compute`` on the rest (one call per batch)."""

    def __init__(self):
        self.store: dict[int, torch.Tensor] = {}
        self.hits = self.misses = 0

    def features(self, xt: torch.Tensor, keys: torch.Tensor, compute) -> torch.Tensor:
        keys = [int(k) for k in keys.tolist()]
        todo = [i for i, k in enumerate(keys) if k not in self.store]
        for i in todo:
            # One image at a time: a feature must not depend on which images shared its batch (kernels
            # may block differently per batch size), or a resumed run would differ from an uninterrupted one.
            if keys[i] not in self.store:
                self.store[keys[i]] = compute(xt[i:i + 1])[0].detach().clone()
        self.hits += len(keys) - len(todo)
        self.misses += len(todo)
        return torch.stack([self.store[k] for k in keys])

    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.store.values())
