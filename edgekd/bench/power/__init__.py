"""Power and energy during the timed loop, from whichever sensors this machine has (one module per sensor).

``rapl`` (x86 CPU packages), ``nvml`` (NVIDIA GPU boards), ``jetson`` (the Jetson's INA3221 rails).
Each reader (``base.PowerReader``) is registered here by ``"module:Class"`` and imported only when
the bench asks which sensors exist; a sensor that is absent says why in one line and the bench
reports "no sensor".  Adding a sensor is one module with a ``PowerReader`` subclass and one line in
``_READERS``.
"""

from __future__ import annotations

from ...lazy import resolve

_READERS = {
    "rapl": "edgekd.bench.power.rapl:RaplReader",
    "nvml": "edgekd.bench.power.nvml:NvmlReader",
    "jetson": "edgekd.bench.power.jetson:JetsonReader",
}


def list_power_readers() -> list[str]:
    return list(_READERS)


def open_power_readers() -> tuple[list, dict[str, str]]:
    """The readers this machine can read, and for the others why not."""
    readers, why = [], {}
    for name, path in _READERS.items():
        cls = resolve(path)
        reason = cls.unavailable()
        if reason is None:
            try:
                readers.append(cls())
                continue
            except (OSError, ValueError) as e:
                reason = f"{name}: {e}"
        why[name] = reason
    return readers, why


def energy_figures(reading: dict, iters: int, batch: int) -> dict:
    """Mean watts, and millijoules per inference (one run of the batch) and per image, from a reader's ``stop()``."""
    j, s = reading["joules"], reading["seconds"]
    out = {"mean_w": j / s if s > 0 else None, "joules": j, "seconds": s,
           "mj_per_inference": j * 1e3 / iters if iters else None, "mj_per_image": j * 1e3 / (iters * batch) if iters else None,
           "scope": reading["scope"]}
    if reading.get("rails"):
        out["rails_mean_w"] = {k: v / s for k, v in reading["rails"].items()} if s > 0 else {}
    return out


class PowerMonitor:
    """A timed-loop monitor over every available power reader (``edgekd/bench/latency.py``)."""

    key = "power"

    def __init__(self, readers: list, why_not: dict[str, str]):
        self.readers, self.why_not = readers, why_not

    def start(self) -> None:
        for r in self.readers:
            r.start()

    def stop(self, iters: int, batch: int) -> dict:
        if not self.readers:
            return {"sensor": None, "why": self.why_not}
        # stop in reverse order: the last started is the first read, each window just covering the loop
        out = {r.name: energy_figures(r.stop(), iters, batch) for r in reversed(self.readers)}
        return {"sensor": [r.name for r in self.readers], **out}
