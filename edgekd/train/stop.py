"""Ctrl-C (SIGINT) and SIGTERM stop a run at the next step boundary, after a resumable checkpoint is saved.

A signal only sets a flag: the loop finishes the step it is in, writes ``last.pt`` (atomically) and
raises :class:`Stopped`, whose message names the step saved.  A second signal stops at once (the
previous ``last.pt`` stays intact: every write is atomic).  Before the loop starts (rendering,
building), SIGTERM is turned into :class:`Terminated` so it is reported like Ctrl-C instead of
killing the process silently.
"""

from __future__ import annotations

import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM before the training loop started: handled where Ctrl-C is, exit code 143."""


class Stopped(Exception):
    """A run stopped by a signal after saving its checkpoint; ``exit_code`` is 128 + the signal's number."""

    def __init__(self, message: str, signum: int, step: int):
        super().__init__(message)
        self.signum, self.step = signum, step
        self.exit_code = 128 + signum


def signal_name(signum: int) -> str:
    return "Ctrl-C (SIGINT)" if signum == signal.SIGINT else signal.Signals(signum).name


def _raise_terminated(signum, frame):
    raise Terminated()


def report_sigterm() -> None:
    """SIGTERM raises :class:`Terminated` (a KeyboardInterrupt) from now on, in the main thread."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_terminated)


class StopRequest:
    """While active (``with StopRequest() as stop``), SIGINT and SIGTERM set ``stop.signum`` instead of interrupting."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.signum: int | None = None
        self._previous: dict = {}

    def __enter__(self) -> "StopRequest":
        if self.enabled:
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        self.restore()

    def _handle(self, signum, frame):
        if self.signum is not None:  # asked twice: stop now, without waiting for the step
            self.restore()
            raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
        self.signum = signum

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    @property
    def requested(self) -> bool:
        return self.signum is not None
