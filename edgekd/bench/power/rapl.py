"""RAPL energy counters of x86 CPUs (``/sys/class/powercap/intel-rapl:N``; AMD Zen exposes the same zones on Linux >= 5.8).

Each top-level ``package-N`` zone counts microjoules in ``energy_uj`` and wraps at
``max_energy_range_uj``.  Sub-zones (``intel-rapl:N:M``: core, uncore, dram) are parts of their
package and are not added again; ``psys`` (a whole-platform zone on some laptops) overlaps the
packages and is left out.  Since Linux 5.10 ``energy_uj`` is readable by root only (CVE-2020-8694).
The counters cover the whole package: other processes on those cores are counted too.
"""

from __future__ import annotations

import time
from pathlib import Path

from .base import PowerReader

POWERCAP = Path("/sys/class/powercap")


def package_zones(root: Path = POWERCAP) -> list[Path]:
    """The top-level package zones under ``root`` (``intel-rapl:0``, ``intel-rapl:1``...)."""
    zones = []
    for z in sorted(root.glob("intel-rapl:*")):
        if z.name.count(":") != 1:  # intel-rapl:0:0 is a sub-zone of package 0
            continue
        try:
            name = (z / "name").read_text().strip()
        except OSError:
            continue
        if name.startswith("package"):
            zones.append(z)
    return zones


def read_uj(zone: Path) -> int:
    return int((zone / "energy_uj").read_text())


def delta_uj(start: int, end: int, max_range: int) -> int:
    """Microjoules between two readings of a counter that wraps at ``max_range`` (at most one wrap in between)."""
    return end - start if end >= start else end + max_range - start


class RaplReader(PowerReader):
    name = "rapl"
    scope = "CPU packages (RAPL; every process on them)"

    def __init__(self, root: Path = POWERCAP):
        self.zones = package_zones(Path(root))
        self.ranges = [int((z / "max_energy_range_uj").read_text()) for z in self.zones]

    @classmethod
    def unavailable(cls, root: Path = POWERCAP) -> str | None:
        root = Path(root)
        if not root.is_dir():
            return f"RAPL: {root} is absent (no powercap driver: a VM, or not an x86 kernel)"
        zones = package_zones(root)
        if not zones:
            return f"RAPL: no package zone under {root}"
        try:
            read_uj(zones[0])
        except PermissionError:
            return f"RAPL: {zones[0] / 'energy_uj'} is readable by root only (Linux >= 5.10); run as root to measure energy"
        except (OSError, ValueError) as e:
            return f"RAPL: cannot read {zones[0] / 'energy_uj'} ({e})"
        return None

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self.e0 = [read_uj(z) for z in self.zones]

    def stop(self) -> dict:
        e1, t1 = [read_uj(z) for z in self.zones], time.perf_counter()
        rails = {(z / "name").read_text().strip(): delta_uj(a, b, r) * 1e-6 for z, a, b, r in zip(self.zones, self.e0, e1, self.ranges)}
        return {"joules": sum(rails.values()), "seconds": t1 - self.t0, "scope": self.scope, "rails": rails}
