"""The device's state during a bench: what decides whether two results may be compared.

CPU frequency governor, the cores this process may use, the Jetson's power mode (``nvpmodel -q``)
and Jetson Linux release (``/etc/nv_tegra_release``), the NVIDIA driver and CUDA versions (NVML),
and throttling seen during the timed loop: the CPU clock (``scaling_cur_freq``) and the hottest
thermal zone, read before, every half second during, and after the loop.  Whatever this machine
does not expose is recorded as None (a VM usually exposes no cpufreq or thermal zones).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

CPU = Path("/sys/devices/system/cpu")
THERMAL = Path("/sys/class/thermal")
TEGRA_RELEASE = Path("/etc/nv_tegra_release")
CLOCK_DROP_THROTTLED = 0.10  # a clock 10% under where the loop started is throttling, not jitter


def _read(p: Path) -> str | None:
    try:
        return p.read_text().strip()
    except OSError:
        return None


def governors(root: Path = CPU) -> str | None:
    """The cpufreq governor of every CPU (``performance``, ``schedutil``...; ``a/b`` when they differ), or None."""
    found = sorted({g for g in (_read(p) for p in root.glob("cpu[0-9]*/cpufreq/scaling_governor")) if g})
    return "/".join(found) or None


def cpu_mhz(root: Path = CPU) -> float | None:
    """The mean current clock of the CPUs this process may run on (MHz), or None without cpufreq."""
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    khz = []
    for p in root.glob("cpu[0-9]*/cpufreq/scaling_cur_freq"):
        n = int(re.sub(r"\D", "", p.parent.parent.name))
        v = _read(p)
        if v and v.isdigit() and (allowed is None or n in allowed):
            khz.append(int(v))
    return sum(khz) / len(khz) / 1000 if khz else None


def hottest_c(root: Path = THERMAL) -> float | None:
    """The hottest thermal zone now (degrees C), or None without thermal zones."""
    temps = [int(v) / 1000 for v in (_read(p) for p in root.glob("thermal_zone*/temp")) if v and v.lstrip("-").isdigit()]
    return max(temps) if temps else None


def power_mode() -> str | None:
    """The Jetson's power mode (``nvpmodel -q``: "NV Power Mode: 15W" and the mode id), or None elsewhere."""
    if not shutil.which("nvpmodel"):
        return None
    try:
        out = subprocess.run(["nvpmodel", "-q"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_nvpmodel(out)


def parse_nvpmodel(text: str) -> str | None:
    m = re.search(r"NV Power Mode:\s*(\S+)", text)
    if not m:
        return None
    ids = [ln.strip() for ln in text.splitlines() if ln.strip().isdigit()]
    return f"{m.group(1)} (mode {ids[0]})" if ids else m.group(1)


def l4t_release(path: Path = TEGRA_RELEASE) -> str | None:
    """Jetson Linux release from /etc/nv_tegra_release ("# R36 (release), REVISION: 4.3, ..." -> "R36.4.3")."""
    m = re.search(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", _read(path) or "")
    return f"R{m.group(1)}.{m.group(2)}" if m else None


def device_state(threads: int | None) -> dict:
    """Everything about this device that must match for two results to be compared."""
    from .gpu import gpu_versions, import_nvml

    allowed = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    state = {"cpu_governor": governors(), "cores_allowed": allowed, "threads": threads, "power_mode": power_mode(),
             "l4t": l4t_release(), "nvidia_driver": None, "cuda_driver": None}
    nvml, why = import_nvml()
    if nvml is not None:
        try:
            state.update(gpu_versions(nvml))
        except Exception as e:  # a driver that answers init but not the query
            state["nvml_error"] = str(e)
    return state


class ClockMonitor:
    """A timed-loop monitor: the CPU clock and the hottest zone before, during (every ``interval`` s) and after."""

    key = "throttling"

    def __init__(self, interval: float = 0.5, cpu_root: Path = CPU, thermal_root: Path = THERMAL):
        self.interval, self.cpu_root, self.thermal_root = interval, cpu_root, thermal_root
        self.clocks, self.temps = [], []
        self._stop, self._thread = threading.Event(), None

    def _sample(self) -> None:
        c, t = cpu_mhz(self.cpu_root), hottest_c(self.thermal_root)
        if c is not None:
            self.clocks.append(c)
        if t is not None:
            self.temps.append(t)

    def start(self) -> None:
        self.clocks, self.temps = [], []
        self._sample()
        if not self.clocks and not self.temps:
            return  # nothing to watch here: no thread
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="edgekd-clock")
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def stop(self, iters: int, batch: int) -> dict:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            self._sample()
        return throttling_summary(self.clocks, self.temps)


def throttling_summary(clocks: list[float], temps: list[float]) -> dict:
    """Whether the clock dropped during the loop (its lowest reading against its highest), with the hottest temperature."""
    if not clocks and not temps:
        return {"throttled": None, "why": "not observable: this machine exposes no cpufreq clock or thermal zone"}
    out = {"temp_c_max": max(temps) if temps else None}
    if clocks:
        drop = 1 - min(clocks) / max(clocks) if max(clocks) > 0 else 0.0
        out.update(cpu_mhz_start=clocks[0], cpu_mhz_min=min(clocks), cpu_mhz_max=max(clocks), cpu_mhz_end=clocks[-1], clock_drop=drop,
                   throttled=drop > CLOCK_DROP_THROTTLED)
    else:
        out.update(throttled=None, why="no cpufreq clock exposed (thermal zones only)")
    return out
