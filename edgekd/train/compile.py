"""Faster training steps (``--compile``), each wrapping the one :func:`edgekd.train.step.train_step`.

* ``graph``: the whole step (teacher forward, student forward and backward,
  fused AdamW) captured once as a CUDA graph and replayed: the step is
  launch-bound (about 2 TFLOP/s on an H100), so removing launches is what pays.
  Needs a GPU, static shapes (the loader drops no batch: every batch is full),
  and a capturable optimiser whose learning rate is a tensor.
* ``inductor`` / ``reduce-overhead`` / ``max-autotune``: ``torch.compile``
  of the trained module with that mode (``inductor`` = the default mode).
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import torch

from ..errors import EdgekdError
from .step import StepParts, train_step


def compiled_step(parts: StepParts, mode: str, device: torch.device, distributed: bool):
    """The step function for ``--compile MODE`` (not ``off``): ``step(x, y, xt=None, keys=None)``."""
    if mode == "graph":
        return GraphStep(parts, device, distributed)
    torch_mode = None if mode == "inductor" else mode
    return partial(train_step, replace(parts, model=torch.compile(parts.model, mode=torch_mode)))


class GraphStep:
    """Capture the step on the first call (after warm-up steps on a side stream), replay after."""

    warmup = 3

    def __init__(self, parts: StepParts, device: torch.device, distributed: bool):
        if device.type != "cuda":
            raise EdgekdError("--compile graph captures CUDA graphs and needs a GPU; use --compile inductor on CPU or drop --compile")
        if distributed:
            raise EdgekdError("--compile graph is single-process; with torchrun use --compile off or inductor")
        self.parts = parts
        # Make the optimiser capturable, with a tensor learning rate the scheduler can fill in place.
        self.lr = []
        for g in parts.optimizer.param_groups:
            g["lr"] = torch.tensor(float(g["lr"]), device=device)
            g["capturable"] = True
            self.lr.append(g["lr"])
        self.graph = None

    def _sync_lr(self):
        # Older schedulers assign a float instead of filling the tensor; the graph reads only the tensor.
        for g, t in zip(self.parts.optimizer.param_groups, self.lr):
            if g["lr"] is not t:
                t.fill_(float(g["lr"]))
                g["lr"] = t

    def _step(self):
        """The step on the static input tensors (gradients zeroed in place, no autocast cache)."""
        return train_step(self.parts, self.x, self.y, self.xt, grads_to_none=False, autocast_cache=False)

    def _capture(self, x, y, xt):
        self.x, self.y, self.xt = x.clone(), y.clone(), xt.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(self.warmup):  # real steps on the first batch, which also builds lazy state
                self._step()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        self.parts.optimizer.zero_grad(set_to_none=False)
        with torch.cuda.graph(self.graph):
            self.out = self._step()

    def __call__(self, x, y, xt=None, keys=None):
        xt = x if xt is None else xt  # the teacher's view (no colour jitter); no cache inside a graph
        if self.graph is None:
            self._capture(x, y, xt)
        if x.shape != self.x.shape:
            raise EdgekdError(f"--compile graph needs every batch of shape {tuple(self.x.shape)}; got {tuple(x.shape)}")
        self._sync_lr()
        self.x.copy_(x, non_blocking=True)
        self.y.copy_(y, non_blocking=True)
        self.xt.copy_(xt, non_blocking=True)
        self.graph.replay()
        return self.out[0].clone(), {k: v.clone() for k, v in self.out[1].items()}
