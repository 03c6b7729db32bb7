"""The Jetson's INA3221 power monitors through sysfs (what jetson-stats/jtop reads), sampled during the timed loop.

Two layouts, by Jetson Linux release:

* JetPack >= 5 (``/sys/bus/i2c/drivers/ina3221/<bus>-<addr>/hwmon/hwmonN/``): ``inK_label`` names
  channel K, ``inK_input`` is its voltage (mV), ``currK_input`` its current (mA).
* JetPack 4 (``/sys/bus/i2c/drivers/ina3221x/<bus>-<addr>/iio:deviceN/``): ``rail_name_K`` and
  ``in_powerK_input`` (mW) directly.

The module's input rail (``VDD_IN`` on Orin, ``POM_5V_IN`` on Nano/TX2, ``5V_IN`` on Xavier NX) is
the whole module; where there is none, the rails are added up.
"""

from __future__ import annotations

import re
from pathlib import Path

from .base import PowerReader, PowerSampler

DRIVERS = Path("/sys/bus/i2c/drivers")
INPUT_RAILS = ("VDD_IN", "POM_5V_IN", "5V_IN", "VIN_SYS_5V0")


def _read_int(p: Path) -> int:
    return int(p.read_text().strip())


def hwmon_channels(root: Path) -> dict[str, tuple[Path, Path]]:
    """JetPack >= 5: rail name -> (voltage file, current file)."""
    channels = {}
    for label in sorted(root.glob("ina3221/*/hwmon/hwmon*/in*_label")):
        k = re.fullmatch(r"in(\d+)_label", label.name).group(1)
        name = label.read_text().strip()
        volt, curr = label.parent / f"in{k}_input", label.parent / f"curr{k}_input"
        if volt.exists() and curr.exists() and not name.lower().startswith("sum of"):
            channels[name] = (volt, curr)
    return channels


def iio_channels(root: Path) -> dict[str, Path]:
    """JetPack 4: rail name -> power file (mW)."""
    channels = {}
    for label in sorted(root.glob("ina3221x/*/iio:device*/rail_name_*")):
        k = label.name.rsplit("_", 1)[1]
        power = label.parent / f"in_power{k}_input"
        if power.exists():
            channels[label.read_text().strip()] = power
    return channels


def read_rails(root: Path = DRIVERS) -> dict[str, float]:
    """Every rail's power now (mW)."""
    rails = {name: _read_int(v) * _read_int(c) / 1000 for name, (v, c) in hwmon_channels(root).items()}
    rails.update({name: float(_read_int(p)) for name, p in iio_channels(root).items()})
    return rails


def module_joules(rails: dict[str, float]) -> tuple[float, str]:
    """The module's energy: its input rail where it has one, else the sum of the rails (and which it is)."""
    for name in INPUT_RAILS:
        if name in rails:
            return rails[name], f"Jetson module input rail {name} (INA3221)"
    return sum(rails.values()), f"sum of the Jetson's INA3221 rails ({', '.join(sorted(rails))})"


class JetsonReader(PowerReader):
    name = "jetson"
    scope = "Jetson module (INA3221)"

    def __init__(self, root: Path = DRIVERS, interval: float = 0.05):
        self.root = Path(root)
        self.sampler = PowerSampler(lambda: read_rails(self.root), interval)

    @classmethod
    def unavailable(cls, root: Path = DRIVERS) -> str | None:
        root = Path(root)
        if not (hwmon_channels(root) or iio_channels(root)):
            return f"Jetson: no INA3221 power monitor under {root} (not a Jetson, or a Jetson without one)"
        try:
            read_rails(root)
        except (OSError, ValueError) as e:
            return f"Jetson: cannot read the INA3221 rails ({e})"
        return None

    def start(self) -> None:
        self.sampler.start()

    def stop(self) -> dict:
        rails, seconds = self.sampler.stop()
        joules, scope = module_joules(rails)
        return {"joules": joules, "seconds": seconds, "scope": scope, "rails": rails}
