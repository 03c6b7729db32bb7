"""Faster training steps (``--compile``).

* ``graph``: the whole step (teacher forward, student forward and backward,
  fused AdamW) captured once as a CUDA graph and replayed: the step is
  launch-bound (about 2 TFLOP/s on an H100), so removing launches is what pays.
  Needs a GPU, static shapes (the loader drops no batch: every batch is full),
  and a capturable optimiser whose learning rate is a tensor.
* ``inductor`` / ``reduce-overhead`` / ``max-autotune``: ``torch.compile``
  of the trained module with that mode (``inductor`` = the default mode).
"""

from __future__ import annotations

from contextlib import nullcontext

import torch

from ..errors import EdgekdError


def compiled_step(trainer, mode: str):
    if mode == "graph":
        return _GraphStep(trainer)
    torch_mode = None if mode == "inductor" else mode
    trainer.ddp_model = torch.compile(trainer.ddp_model, mode=torch_mode)
    return trainer._eager_step


class _GraphStep:
    """Capture ``trainer``'s step on the first call (after warm-up steps on a side stream), replay after."""

    warmup = 3

    def __init__(self, trainer):
        if trainer.device.type != "cuda":
            raise EdgekdError("--compile graph captures CUDA graphs and needs a GPU; use --compile inductor on CPU or drop --compile")
        if trainer.dist.enabled:
            raise EdgekdError("--compile graph is single-process; with torchrun use --compile off or inductor")
        self.t = trainer
        opt = trainer.optimizer
        # Rebuild the optimiser as capturable with a tensor learning rate the scheduler can fill in place.
        self.lr = []
        for g in opt.param_groups:
            g["lr"] = torch.tensor(float(g["lr"]), device=trainer.device)
            g["capturable"] = True
            self.lr.append(g["lr"])
        self.graph = None

    def _sync_lr(self):
        # Older schedulers assign a float instead of filling the tensor; the graph reads only the tensor.
        for g, t in zip(self.t.optimizer.param_groups, self.lr):
            if g["lr"] is not t:
                t.fill_(float(g["lr"]))
                g["lr"] = t

    def _fwd_bwd(self, x, y, xt):
        t = self.t
        zt = t._teacher_async(xt)
        # cache_enabled=False: autocast's weight-cast cache must not outlive a graph capture.
        with torch.autocast("cuda", dtype=t.amp_dtype, cache_enabled=False) if t.amp_dtype else nullcontext():
            total, losses = t.ddp_model(x, y, zt)
        total.backward()
        t.optimizer.step()
        return total.detach(), {k: v.detach() for k, v in losses.items()}

    def __call__(self, x, y, xt=None, keys=None):
        t = self.t
        xt = x if xt is None else xt  # the teacher's view (no colour jitter); no cache inside a graph
        if self.graph is None:
            self.x, self.y, self.xt = x.clone(), y.clone(), xt.clone()
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(self.warmup):  # real steps on the first batch, which also builds lazy state
                    t.optimizer.zero_grad(set_to_none=False)
                    self._fwd_bwd(self.x, self.y, self.xt)
            torch.cuda.current_stream().wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            t.optimizer.zero_grad(set_to_none=False)
            with torch.cuda.graph(self.graph):
                t.optimizer.zero_grad(set_to_none=False)
                self.out = self._fwd_bwd(self.x, self.y, self.xt)
        if x.shape != self.x.shape:
            raise EdgekdError(f"--compile graph needs every batch of shape {tuple(self.x.shape)}; got {tuple(x.shape)}")
        self._sync_lr()
        self.x.copy_(x, non_blocking=True)
        self.y.copy_(y, non_blocking=True)
        self.xt.copy_(xt, non_blocking=True)
        self.graph.replay()
        return self.out[0].clone(), {k: v.clone() for k, v in self.out[1].items()}
