"""Latency of a runner: warm-up by time and count, timed runs per batch size, the target's budget verdict."""

from __future__ import annotations

import time

import numpy as np

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


def timed_loop(runner, x, warmup_iters, warmup_time, min_iters, min_time, desc, show, pre_fn=None):
    """Warm up (>= warmup_iters and >= warmup_time), then run until >= min_iters and >= min_time."""
    per_iter = _warm_up(runner, x, warmup_iters, warmup_time)
    lat, parts = [], {}
    # The run stops at >= min_iters *and* >= min_time: size the bar by both (from the warm-up's pace).
    bar = progress_bar(max(min_iters, int(min_time / per_iter) if per_iter > 0 else 0), desc, show)
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
    bar.total = len(lat)  # ends at the count actually timed
    bar.refresh()
    bar.close()
    return lat, {k: float(np.median(v) * 1e3) for k, v in parts.items()}


def measure_latency(runner, x1: np.ndarray, batch: int, timing: dict, show: bool, pre_fn=None) -> dict:
    """Latency statistics at batch 1 and ``batch`` (only the model's own batch when its input fixes one)."""
    fixed_batch = x1.shape[0] != 1
    batches = [x1.shape[0]] if fixed_batch else sorted({1, int(batch)})
    latency = {}
    for b in batches:
        xb = x1 if fixed_batch else np.repeat(x1, b, axis=0)
        lat, parts = timed_loop(runner, xb, desc=f"latency batch {b}", show=show, pre_fn=pre_fn, **timing)
        latency[f"batch{b}"] = {"batch": b, **latency_stats(lat, b), "stages_p50_ms": parts}
    return latency


def machine_arch() -> str:
    import platform

    m = platform.machine().lower()
    return {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}.get(m, m)


def on_target(tgt: dict, runner, backend: str) -> tuple[bool, str]:
    """Is this run on the target's kind of hardware?  A budget verdict means something only there."""
    # The runner class says where it runs (edgekd/bench/runners/); the torch reference runs where its device is.
    gpu_backend = type(runner).accelerator == "cuda" or (
        runner.model_kind == "torch" and any("cuda" in str(p) for p in runner.describe().get("providers") or []))
    arch, want = machine_arch(), (tgt.get("arch") or "").lower()
    if want and arch != want:
        return False, f"this machine is {arch}, {tgt['name']} is {want}"
    if tgt.get("accelerator") == "cuda" and not gpu_backend:
        return False, f"{tgt['name']} runs on its CUDA GPU, this bench ran on the CPU ({backend})"
    if tgt.get("accelerator") == "cpu" and gpu_backend:
        return False, f"{tgt['name']} runs on its CPU, this bench ran on a GPU ({backend})"
    return True, ""


def budget_verdict(tgt: dict | None, runner, backend: str, latency: dict) -> dict | None:
    """The target's latency budget against p90 at batch 1 (a pass/fail only on the target's kind of hardware)."""
    budget = float((tgt or {}).get("latency_budget_ms") or 0.0)
    if not budget or "batch1" not in latency:
        return None
    p90 = latency["batch1"]["p90_ms"]
    here, why = on_target(tgt, runner, backend)
    return {"target": tgt["name"], "latency_budget_ms": budget, "p90_ms": p90, "on_target": here,
            "pass": (p90 <= budget) if here else None, **({} if here else {"why_no_verdict": why})}
