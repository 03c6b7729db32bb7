"""An NVIDIA GPU's board power through NVML (``pip install nvidia-ml-py``).

Volta and later keep a total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``, mJ since the
driver loaded), read before and after the loop; older GPUs give only the power now
(``nvmlDeviceGetPowerUsage``, mW), sampled every 50 ms.  It is the whole board: other processes on
the same GPU are counted too.
"""

from __future__ import annotations

import time

from ..gpu import device_index, import_nvml
from .base import PowerReader, PowerSampler


def counter_joules(start_mj: int, end_mj: int) -> float:
    """Joules between two readings of NVML's total-energy counter (millijoules)."""
    return (int(end_mj) - int(start_mj)) * 1e-3


def has_energy_counter(nvml, handle) -> bool:
    try:
        nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        return True
    except Exception:  # NVMLError_NotSupported before Volta
        return False


class NvmlReader(PowerReader):
    name = "nvml"
    scope = "NVIDIA GPU board (NVML; every process on it)"

    def __init__(self, nvml=None, interval: float = 0.05):
        if nvml is None:
            nvml, _ = import_nvml()
        self.nvml = nvml
        self.handle = nvml.nvmlDeviceGetHandleByIndex(device_index())
        self.counter = has_energy_counter(nvml, self.handle)
        self.sampler = None if self.counter else PowerSampler(lambda: {"gpu": float(nvml.nvmlDeviceGetPowerUsage(self.handle))}, interval)

    @classmethod
    def unavailable(cls) -> str | None:
        nvml, why = import_nvml()
        if nvml is None:
            return why
        try:
            nvml.nvmlDeviceGetPowerUsage(nvml.nvmlDeviceGetHandleByIndex(device_index()))
        except Exception as e:
            return f"NVML: this GPU reports no power ({e})"
        return None

    def start(self) -> None:
        if self.sampler is not None:
            return self.sampler.start()
        self.t0, self.e0 = time.perf_counter(), self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)

    def stop(self) -> dict:
        if self.sampler is not None:
            rails, seconds = self.sampler.stop()
            return {"joules": rails.get("gpu", 0.0), "seconds": seconds, "scope": self.scope + ", sampled power"}
        e1, t1 = self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle), time.perf_counter()
        return {"joules": counter_joules(self.e0, e1), "seconds": t1 - self.t0, "scope": self.scope + ", energy counter"}
