"""Latency of a runner: warm-up by time and count, timed runs per batch size, the target's budget verdict."""

from __future__ import annotations

import time

import numpy as np

from ..config import as_target
from .progress import progress_bar
from .stats import latency_stats


def _warm_up(runner, x, warmup_iters, warmup_time) -> float:
    """Run untimed until >= warmup_iters and >= warmup_time; the seconds per run it took."""
    t_start = time.perf_counter()
    n = 0
    while n < warmup_iters or time.perf_counter() - t_start < warmup_time:
        runner.infer(x)
        n += 1
    return (time.perf_counter() - t_start) / max(n, 1)


def timed_loop(runner, x, warmup_iters, warmup_time, min_iters, min_time, desc, show, pre_fn=None, monitors=()):
    """Warm up (>= warmup_iters and >= warmup_time), then run until >= min_iters and >= min_time.

    ``monitors`` (memory, power, clock: each with ``key``, ``start()`` and ``stop(iters, batch)``) are
    started after the warm-up, right before the first timed run, and stopped right after the last;
    what each returns is in the third value, under its ``key``.
    """
    per_iter = _warm_up(runner, x, warmup_iters, warmup_time)
    lat, parts = [], {}
    # The run stops at >= min_iters *and* >= min_time: size the bar by both (from the warm-up's pace).
    bar = progress_bar(max(min_iters, int(min_time / per_iter) if per_iter > 0 else 0), desc, show)
    for m in monitors:
        m.start()
    t_start = time.perf_counter()
    while len(lat) < min_iters or time.perf_counter() - t_start < min_time:
        if pre_fn is not None:
            t0 = time.perf_counter()
            pre_fn()
            parts.setdefault("preprocess", []).append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        _, timing = runner.infer(x)
        lat.append(time.perf_counter() - t0)
        for k, v in timing.items():
            parts.setdefault(k, []).append(v)
        if len(lat) > bar.total:
            bar.total = len(lat)
        bar.update(1)
    seen = {m.key: m.stop(len(lat), int(x.shape[0])) for m in reversed(monitors)}
    bar.total = len(lat)  # ends at the count actually timed
    bar.refresh()
    bar.close()
    stages = {k: float(np.median(v) * 1e3) for k, v in parts.items()}
    return (lat, stages, seen) if monitors else (lat, stages)


def measure_latency(runner, x1: np.ndarray, batch: int, timing: dict, show: bool, pre_fn=None, monitors=()) -> dict:
    """Latency statistics at batch 1 and ``batch`` (only the model's own batch when its input fixes one),
    with what the ``monitors`` saw during each timed loop (see :func:`timed_loop`)."""
    fixed_batch = x1.shape[0] != 1
    batches = [x1.shape[0]] if fixed_batch else sorted({1, int(batch)})
    latency = {}
    for b in batches:
        xb = x1 if fixed_batch else np.repeat(x1, b, axis=0)
        lat, parts, *seen = timed_loop(runner, xb, desc=f"latency batch {b}", show=show, pre_fn=pre_fn, monitors=monitors, **timing)
        latency[f"batch{b}"] = {"batch": b, **latency_stats(lat, b), "stages_p50_ms": parts, **(seen[0] if seen else {})}
    return latency


def machine_arch() -> str:
    import platform

    m = platform.machine().lower()
    return {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}.get(m, m)


def runs_on_gpu(runner) -> bool:
    # The runner class says where it runs (edgekd/bench/runners/); the torch reference runs where its device is.
    return type(runner).accelerator == "cuda" or (
        runner.model_kind == "torch" and any("cuda" in str(p) for p in runner.describe().get("providers") or []))


def on_target(tgt, runner, backend: str) -> tuple[bool, str]:
    """Is this run on the target's kind of hardware (``tgt``: a TargetConfig or its dict)?  A budget verdict means
    something only there."""
    tgt = as_target(tgt)
    gpu_backend = runs_on_gpu(runner)
    arch, want = machine_arch(), (tgt.arch or "").lower()
    if want and arch != want:
        return False, f"this machine is {arch}, {tgt.name} is {want}"
    if tgt.accelerator == "cuda" and not gpu_backend:
        return False, f"{tgt.name} runs on its CUDA GPU, this bench ran on the CPU ({backend})"
    if tgt.accelerator == "cpu" and gpu_backend:
        return False, f"{tgt.name} runs on its CPU, this bench ran on a GPU ({backend})"
    return True, ""


def budget_verdict(tgt, runner, backend: str, latency: dict) -> dict | None:
    """The target's latency budget against p90 at batch 1 (a pass/fail only on the target's kind of hardware)."""
    tgt = as_target(tgt)
    budget = float(tgt.latency_budget_ms or 0.0) if tgt else 0.0
    if not budget or "batch1" not in latency:
        return None
    p90 = latency["batch1"]["p90_ms"]
    here, why = on_target(tgt, runner, backend)
    return {"target": tgt.name, "latency_budget_ms": budget, "p90_ms": p90, "on_target": here,
            "pass": (p90 <= budget) if here else None, **({} if here else {"why_no_verdict": why})}


def memory_verdict(tgt, runner, backend: str, memory: dict) -> dict | None:
    """The target's ``memory_gb`` against this process's peak footprint (a verdict only on the target's kind of hardware).

    The footprint is the timed loop's peak resident memory plus this process's GPU memory (NVML);
    on a Jetson the GPU shares the module's memory, which ``memory_gb`` is.
    """
    from .memory import footprint_mb

    tgt = as_target(tgt)
    limit_gb = float(tgt.memory_gb or 0.0) if tgt else 0.0
    used = footprint_mb(memory)
    if not limit_gb or used is None:
        return None
    here, why = on_target(tgt, runner, backend)
    return {"target": tgt.name, "memory_gb": limit_gb, "footprint_mb": used, "on_target": here,
            "pass": (used <= limit_gb * 1024) if here else None, **({} if here else {"why_no_verdict": why})}
