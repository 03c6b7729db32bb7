"""Atomic writes and safe loads.

Every file edgekd writes (checkpoints, ONNX, JSON reports) goes to a temporary
file in the same directory, is fsync'ed and then ``os.replace``d over the
target: a kill at any moment leaves either the old or the new version, never a
torn one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from .errors import EdgekdError


def atomic_write(path: str | os.PathLike, write: Callable[[Any], None], mode: str = "wb") -> Path:
    """Call ``write(fileobj)`` on a temporary file, then move it over ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise EdgekdError(f"cannot write to {path.parent}: {e.strerror}; choose a writable directory (--out)") from None
    existed = path.exists()
    recorder = None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
        with os.fdopen(fd, mode) as f:
            recorder = _WriteErrors(f)
            write(recorder)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        cause = e if isinstance(e, OSError) else (recorder.error if recorder is not None else None)
        if cause is None or isinstance(e, EdgekdError):
            raise
        kept = f"the previous {path.name} is intact" if existed else f"no {path.name} was written"
        raise EdgekdError(f"cannot write {path} ({_os_error(cause)}); {kept}; free space or choose another --out, then run again") from None
    return path


def _os_error(e: OSError) -> str:
    import errno

    name = errno.errorcode.get(e.errno, "") if e.errno else ""
    return f"{e.strerror or e}{', ' + name if name else ''}"


class _WriteErrors:
    """A file object that remembers the first OSError of a write: torch.save reports a full disk as
    'unexpected pos' (a RuntimeError), and the cause would be lost."""

    def __init__(self, f):
        self._f, self.error = f, None

    def write(self, data):
        try:
            return self._f.write(data)
        except OSError as e:
            self.error = self.error or e
            raise

    def __getattr__(self, name):
        return getattr(self._f, name)


def atomic_write_bytes(path, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path, text: str) -> Path:
    return atomic_write(path, lambda f: f.write(text), mode="w")


def atomic_write_json(path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o):
    # numpy scalars and arrays appear in metrics; keep JSON free of numpy types.
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def append_jsonl(path, obj: Any) -> None:
    """Append one JSON line (metrics logs are append-only; a torn last line is skipped on read).

    A failed write (a full disk) is cut back to the lines before it, so the next append starts on a line of its own."""
    data = memoryview((json.dumps(obj, default=_json_default) + "\n").encode())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            start = os.lseek(fd, 0, os.SEEK_END)
            try:
                while data:  # a write to a nearly full disk may be short before it fails
                    data = data[os.write(fd, data):]
            except OSError:
                os.ftruncate(fd, start)
                raise
        finally:
            os.close(fd)
    except OSError as e:
        raise EdgekdError(f"cannot append to {path} ({_os_error(e)}); the lines already in it are intact; free space or choose "
                          "another --out, then run again (distill: --resume continues from last.pt)") from None


def read_jsonl(path) -> list:
    out = []
    p = Path(path)
    if not p.exists():
        return out
    for line in p.read_text().splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line torn by a kill mid-write
    return out


def truncate_jsonl(path, keep: Callable[[dict], bool]) -> None:
    """Rewrite a JSON-lines log (atomically) with only the records ``keep`` accepts; torn lines are dropped."""
    path = Path(path)
    if not path.exists():
        return
    records = read_jsonl(path)
    kept = [r for r in records if isinstance(r, dict) and keep(r)]
    if len(kept) != len(path.read_text().splitlines()):
        atomic_write_text(path, "".join(json.dumps(r, default=_json_default) + "\n" for r in kept))


def save_checkpoint(path, obj: dict) -> Path:
    """torch.save through :func:`atomic_write`."""
    import torch

    return atomic_write(path, lambda f: torch.save(obj, f))


def load_checkpoint(path) -> dict:
    """Load an edgekd checkpoint with ``weights_only=True``: a pickle that would run code is refused."""
    import pickle
    import warnings

    import torch

    path = Path(path)
    if not path.exists():
        raise EdgekdError(f"checkpoint {path} does not exist; give the path to a run's best.pt or last.pt")
    if path.is_dir():
        raise EdgekdError(f"{path} is a directory; give a checkpoint file such as {path / 'best.pt'}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about odd pickle protocols of damaged files: the error says it all
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        import re

        # Only a pickle that names a global (a class or function) could run code; anything else is just damaged.
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        if found is None:
            raise EdgekdError(f"{path} is corrupt or not a torch checkpoint ({_first_line(e)}); "
                              "re-export it or use another run's last.pt") from None
        raise EdgekdError(
            f"refusing to load {path}: it references {found.group(1)}, and unpickling it could run code; only tensors, numbers, "
            "strings and containers are loaded (weights_only=True): re-save the weights as a state dict"
        ) from None
    except Exception as e:  # a truncated zip, a text file, random bytes: torch raises all kinds of errors
        raise EdgekdError(f"{path} is corrupt or not a torch checkpoint ({_first_line(e)}); re-export it or use another run's last.pt") from None
    return ckpt


def _first_line(e: BaseException) -> str:
    """The gist of a library's error, without its multi-line advice."""
    if isinstance(e, (KeyError, IndexError)) or not str(e).strip():
        return f"unreadable data: {type(e).__name__}"  # torch's unpickler on text or random bytes
    lines = [x.strip() for x in str(e).splitlines() if x.strip()]
    if lines[0].startswith("Weights only load failed"):
        # torch's first lines are a generic weights_only notice; the cause is further down.
        lines = [x for x in lines if x.startswith("Unsupported")] or ["unreadable pickle data"]
    return lines[0][:160]


def check_torch_file(path, what: str = "checkpoint") -> None:
    """A cheap look at the first bytes (a zip archive or a pickle): refuse a text or damaged file before any heavy work."""
    path = Path(path).expanduser()
    with open(path, "rb") as f:
        head = f.read(4)
    if not (head.startswith(b"PK") or head[:1] == b"\x80"):
        raise EdgekdError(f"{what} {path} is corrupt or not a torch checkpoint (neither a zip archive nor a pickle); "
                          "re-export it or use another run's last.pt")


def check_out_dir(path, option: str = "--out") -> Path:
    """Refuse an output folder that cannot be created (a file in the way, no permission), creating nothing."""
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise EdgekdError(f"{option} {path} is a file, not a folder; choose another {option}")
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise EdgekdError(f"output directory {path} is not writable (Not a directory: {probe} is a file); choose another {option}")
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise EdgekdError(f"output directory {path} is not writable (Permission denied on {probe}); choose another {option}")
    return path
