"""How many CPU threads torch's operators use in a training process."""

from __future__ import annotations

import os

from ..errors import EdgekdError


def set_threads(n: int | None) -> None:
    """torch's intra-op threads.  Its default (every core) oversubscribes a loaded machine: with the
    loader's processes and other jobs, 2 threads on 2 busy cores ran a forward 250x slower than 1."""
    if n is not None and n < 1:
        raise EdgekdError(f"--threads {n} must be at least 1")
    if n is None:
        if os.environ.get("OMP_NUM_THREADS"):
            return  # the user (or a launcher such as torchrun) already chose
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        n = max(1, min(8, cores // 2))
    import torch

    torch.set_num_threads(n)
