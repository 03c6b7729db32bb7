"""Memory of the bench process: resident memory after the model loaded, its peak during the timed loop, GPU memory.

On Linux the kernel keeps the peak resident set itself (``VmHWM`` in ``/proc/self/status``) and
resets it on request (writing ``5`` to ``/proc/self/clear_refs``, Linux >= 4.0), so the peak of the
timed loop alone is read without a sampling thread that would share the CPU with the model.  psutil
is not needed for that (its Linux ``memory_info`` has no peak); without ``/proc`` (macOS, Windows)
the peak is ``resource.getrusage``'s ``ru_maxrss``, which counts from the process's start, and the
current resident set comes from psutil when it is installed.  GPU memory is NVIDIA's own count of
this process's allocation (NVML, ``edgekd/bench/gpu.py``), where NVML exists.
"""

from __future__ import annotations

import os
import re
import sys

_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


def _status_kb(key: str) -> int | None:
    try:
        with open(_STATUS) as f:
            m = re.search(rf"^{key}:\s+(\d+)\s+kB", f.read(), re.M)
    except OSError:
        return None
    return int(m.group(1)) if m else None


def rss_mb() -> float | None:
    """This process's resident memory now (MB), or None where neither /proc nor psutil can say."""
    kb = _status_kb("VmRSS")
    if kb is not None:
        return kb / 1024
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process().memory_info().rss / 2**20


def reset_peak() -> bool:
    """Start a new peak-RSS window (Linux); False where the peak can only be the process's lifetime peak."""
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float | None:
    """The peak resident memory (MB) since :func:`reset_peak`, else since the process started."""
    kb = _status_kb("VmHWM")
    if kb is not None:
        return kb / 1024
    try:
        import resource
    except ImportError:  # Windows: no resource module
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, kB elsewhere


class PeakMemory:
    """A timed-loop monitor: the peak resident memory of the loop and its increase over the loaded model's baseline."""

    key = "memory"

    def __init__(self, baseline_mb: float | None):
        self.baseline_mb = baseline_mb
        self.windowed = False

    def start(self) -> None:
        self.windowed = reset_peak()

    def stop(self, iters: int, batch: int) -> dict:
        peak = peak_rss_mb()
        out = {"peak_rss_mb": peak, "source": self.source()}
        if peak is not None and self.baseline_mb is not None:
            out["increase_mb"] = peak - self.baseline_mb
        return out

    def source(self) -> str:
        if self.windowed:
            return "VmHWM of /proc/self/status, reset before the timed loop"
        if _status_kb("VmHWM") is not None:
            return "VmHWM of /proc/self/status since the process started (clear_refs not writable)"
        return "getrusage ru_maxrss since the process started"


def memory_summary(latency: dict, baseline_mb: float | None, gpu: dict | None) -> dict:
    """The whole bench's memory: the loaded baseline, the highest peak over the batch sizes, GPU memory."""
    peaks = [v["memory"]["peak_rss_mb"] for v in latency.values() if (v.get("memory") or {}).get("peak_rss_mb") is not None]
    first = next((v["memory"] for v in latency.values() if v.get("memory")), {})
    out = {"baseline_rss_mb": baseline_mb, "peak_rss_mb": max(peaks) if peaks else None, "source": first.get("source"),
           "pid": os.getpid()}
    if out["peak_rss_mb"] is not None and baseline_mb is not None:
        out["increase_mb"] = out["peak_rss_mb"] - baseline_mb
    out["gpu"] = gpu
    return out


def footprint_mb(memory: dict) -> float | None:
    """What the target's ``memory_gb`` is checked against: peak resident memory plus this process's GPU memory."""
    if memory.get("peak_rss_mb") is None:
        return None
    return memory["peak_rss_mb"] + float((memory.get("gpu") or {}).get("process_used_mb") or 0.0)
