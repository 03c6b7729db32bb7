"""NVIDIA GPUs through NVML (``pip install nvidia-ml-py``, imported as ``pynvml``): versions, this process's memory.

NVML ships with the NVIDIA driver of discrete GPUs; a Jetson has no NVML (its GPU shares the
module's memory, and its state comes from sysfs and ``nvpmodel``: ``device_state.py``).  Every
function takes the ``pynvml`` module as ``nvml`` so the parsing of what NVML returns is tested with
values recorded from the real API; without NVML each says why in one line.
"""

from __future__ import annotations

import os


def import_nvml():
    """``(pynvml, None)`` with NVML initialised, or ``(None, why)``."""
    try:
        import pynvml
    except ImportError:
        return None, "NVML: nvidia-ml-py is not installed (pip install nvidia-ml-py)"
    try:
        pynvml.nvmlInit()
    except Exception as e:  # NVMLError_LibraryNotFound, _DriverNotLoaded, ... : no usable NVIDIA driver here
        return None, f"NVML: {e}"
    return pynvml, None


def device_index() -> int:
    """The NVML index of the GPU the runtimes use: the first of CUDA_VISIBLE_DEVICES when it names one by number."""
    first = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0].strip()
    return int(first) if first.isdigit() else 0


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)  # older pynvml returns bytes


def cuda_version(code: int) -> str:
    """NVML's CUDA driver version integer (12040) as text (12.4)."""
    return f"{code // 1000}.{(code % 1000) // 10}"


def gpu_versions(nvml) -> dict:
    """GPU name, driver version and the CUDA version the driver supports."""
    h = nvml.nvmlDeviceGetHandleByIndex(device_index())
    return {"gpu_name": _text(nvml.nvmlDeviceGetName(h)), "nvidia_driver": _text(nvml.nvmlSystemGetDriverVersion()),
            "cuda_driver": cuda_version(int(nvml.nvmlSystemGetCudaDriverVersion()))}


def process_gpu_memory(procs, pid: int, total_bytes: int | None = None) -> dict:
    """This process's GPU memory from NVML's list of compute processes (objects with ``pid`` and ``usedGpuMemory``)."""
    mine = [p for p in procs if int(p.pid) == pid]
    used = [p.usedGpuMemory for p in mine if p.usedGpuMemory is not None]  # None: not visible (a container's PID namespace)
    out = {"process_used_mb": sum(used) / 2**20 if used else None, "source": "NVML compute processes"}
    if total_bytes is not None:
        out["device_total_mb"] = total_bytes / 2**20
    if not mine:
        out["why_none"] = f"NVML lists no compute context of process {pid} (other PID namespace, or nothing on the GPU)"
    return out


def gpu_memory(nvml=None) -> dict | None:
    """This process's GPU memory now, or None without NVML."""
    if nvml is None:
        nvml, _ = import_nvml()
        if nvml is None:
            return None
    try:
        h = nvml.nvmlDeviceGetHandleByIndex(device_index())
        return process_gpu_memory(nvml.nvmlDeviceGetComputeRunningProcesses(h), os.getpid(), nvml.nvmlDeviceGetMemoryInfo(h).total)
    except Exception as e:  # NVMLError_NotSupported and kin: say so, keep the timings
        return {"process_used_mb": None, "source": "NVML", "why_none": str(e)}
