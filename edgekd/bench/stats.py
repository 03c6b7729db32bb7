"""Latency statistics (numpy only)."""

from __future__ import annotations

import numpy as np


def latency_stats(seconds, batch: int = 1) -> dict:
    """min, p50, p90, p95, p99, max, mean (ms), coefficient of variation, throughput (images/s)."""
    ms = np.asarray(seconds, np.float64) * 1e3
    mean = float(ms.mean())
    return {
        "iters": int(ms.size),
        "min_ms": float(ms.min()),
        "p50_ms": float(np.percentile(ms, 50)),
        "p90_ms": float(np.percentile(ms, 90)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
        "mean_ms": mean,
        "cv": float(ms.std() / mean) if mean > 0 else 0.0,
        "throughput_ips": float(batch * 1e3 / mean) if mean > 0 else 0.0,
    }
