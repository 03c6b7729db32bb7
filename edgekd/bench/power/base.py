"""The power-reader protocol: energy over the timed loop from one kind of sensor.

A reader is created only where :meth:`PowerReader.unavailable` says None.  ``start()`` is called
right before the timed loop and ``stop()`` right after; ``stop`` returns the joules spent between
them, the seconds, what the sensor covers (``scope``) and, where it has several, each rail's joules.
An energy counter (RAPL, NVML's total energy) is read twice and needs nothing in between; a sensor
that reports only power (the Jetson's INA3221, NVML on older GPUs) is sampled by a
:class:`PowerSampler` thread, integrated with the trapezoid rule.
"""

from __future__ import annotations

import threading
import time


class PowerReader:
    """One kind of power sensor.  Subclasses set ``name`` and ``scope`` and implement the methods."""

    name = "base"
    scope = ""  # what the joules cover, e.g. "CPU packages (every process on them)"

    @classmethod
    def unavailable(cls) -> str | None:
        """Why this sensor cannot be read on this machine (one line), or None when it can."""
        return None

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> dict:
        """``{"joules": J, "seconds": s, "scope": ..., "rails": {name: J}}`` since :meth:`start`."""
        raise NotImplementedError


def integrate(samples: list[tuple[float, dict]]) -> dict[str, float]:
    """Joules per rail from ``(seconds, {rail: milliwatts})`` samples (trapezoid rule)."""
    joules: dict[str, float] = {}
    for (t0, p0), (t1, p1) in zip(samples, samples[1:]):
        for rail in p0.keys() & p1.keys():
            joules[rail] = joules.get(rail, 0.0) + (p0[rail] + p1[rail]) / 2 * 1e-3 * (t1 - t0)
    return joules


class PowerSampler:
    """Calls ``read() -> {rail: mW}`` every ``interval`` seconds on a daemon thread, from start() to stop().

    Reading a few sysfs files takes tens of microseconds: at 50 ms intervals the thread costs the
    timed loop well under 0.1% of one core.
    """

    def __init__(self, read, interval: float = 0.05):
        self.read, self.interval = read, interval
        self.samples: list[tuple[float, dict]] = []
        self._stop = threading.Event()
        self._thread = None

    def start(self) -> None:
        self.samples = [(time.perf_counter(), self.read())]
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True, name="edgekd-power")
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.samples.append((time.perf_counter(), self.read()))

    def stop(self) -> tuple[dict, float]:
        """Joules per rail and the seconds covered."""
        self._stop.set()
        self._thread.join()
        self.samples.append((time.perf_counter(), self.read()))
        return integrate(self.samples), self.samples[-1][0] - self.samples[0][0]
