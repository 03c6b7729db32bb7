"""One run directory, one writer: ``distill``, ``compare`` and ``export`` hold ``DIR/.edgekd.lock`` while they write.

The lock file is created atomically (``O_CREAT | O_EXCL``) and holds the writer's pid, host, verb and
process start time.  A second writer is refused with one line naming the holder.  A lock left by a
process that is gone (killed with SIGKILL, a crashed machine) is recovered with one line: the pid no
longer runs, or runs as another process (its start time differs: the pid was reused).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

from .errors import EdgekdError

LOCK_NAME = ".edgekd.lock"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux /proc), to tell a reused pid from its first owner."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]  # field 22 of proc(5), counted after the command name


def _alive(holder: dict) -> bool:
    if holder.get("host") != socket.gethostname():
        return True  # another machine's process (a shared file system): it cannot be checked from here
    pid = int(holder.get("pid", -1))
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    started = _start_time(pid)
    return started is None or holder.get("start") in (None, started)


def read_lock(folder) -> dict | None:
    """The holder's record, or None (no lock, or one torn by a crash between its creation and its first write)."""
    try:
        text = (Path(folder) / LOCK_NAME).read_text()
        return json.loads(text) if text.strip() else {}
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}


def _describe(holder: dict) -> str:
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder["time"])) if "time" in holder else "an unknown time"
    where = "" if holder.get("host") == socket.gethostname() else f" on {holder.get('host')}"
    return f"edgekd {holder.get('verb', '?')} (pid {holder.get('pid', '?')}{where}, since {since})"


def check_unlocked(folder) -> None:
    """Refuse now when another live process writes into ``folder`` (the lock is taken later, once every check passed)."""
    holder = read_lock(folder)
    if holder and _alive(holder):
        pid = holder.get("pid")
        raise EdgekdError(f"{folder} is being written by {_describe(holder)}; wait for it to finish, stop it (kill {pid}), "
                          "or choose another --out")


class RunLock:
    """``with RunLock(folder, "distill"):`` -- the folder is created if needed and removed again if left empty."""

    def __init__(self, folder, verb: str, log=None, enabled: bool = True):
        self.folder, self.verb, self.enabled = Path(folder), verb, enabled
        self.path = self.folder / LOCK_NAME
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self._created: list[Path] = []
        self._held = False

    def __enter__(self) -> "RunLock":
        if self.enabled:
            self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        self._created = [p for p in (self.folder, *self.folder.parents) if not p.exists()]  # removed again if left empty
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise EdgekdError(f"output directory {self.folder} is not writable ({e.strerror}); choose another --out") from None
        for _ in range(5):
            if self._try_create():
                self._held = True
                return
            holder = read_lock(self.folder)
            if holder is None:
                continue  # released meanwhile: try again
            if holder == {} and time.time() - self._mtime() < 5:
                time.sleep(0.2)  # being written by a writer that has just created it
                continue
            if holder and _alive(holder):
                self.release()
                check_unlocked(self.folder)  # raises with the holder's description
            self._recover(holder)
        raise EdgekdError(f"cannot take the lock {self.path}: other edgekd processes keep taking it; try again")

    def _mtime(self) -> float:
        try:
            return self.path.stat().st_mtime
        except OSError:
            return 0.0

    def _try_create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        except OSError as e:
            raise EdgekdError(f"cannot create the lock {self.path} ({e.strerror}); choose a writable --out") from None
        record = {"pid": os.getpid(), "host": socket.gethostname(), "verb": self.verb, "time": time.time(),
                  "start": _start_time(os.getpid())}
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(record) + "\n")
        return True

    def _recover(self, holder: dict) -> None:
        """Move a dead writer's lock aside (rename is atomic: of two processes recovering at once, one does it)."""
        aside = self.path.with_name(f"{LOCK_NAME}.stale-{os.getpid()}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        moved = read_lock_file(aside)
        if moved != holder:  # another process recovered and locked in between: give its lock back
            try:
                os.link(aside, self.path)
            except OSError:
                pass
            aside.unlink(missing_ok=True)
            return
        aside.unlink(missing_ok=True)
        what = _describe(holder) if holder else "a writer that left an empty lock file"
        self.log(f"note: recovered the lock of {self.folder} left by {what}, which is no longer running")

    def release(self) -> None:
        if self._held:
            holder = read_lock(self.folder)
            if holder and holder.get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)
            self._held = False
        for folder in self._created:  # deepest first, only when empty: a refused run leaves no folder behind
            try:
                folder.rmdir()
            except OSError:
                break
        self._created = []


def read_lock_file(path: Path) -> dict:
    try:
        text = path.read_text()
        return json.loads(text) if text.strip() else {}
    except (OSError, ValueError):
        return {}
