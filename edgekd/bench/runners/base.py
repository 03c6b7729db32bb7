"""The bench runner protocol and the backend registry (Polygraphy's ``BaseRunner``, timm's registry manner).

A runner is created closed and cheap; ``open()`` loads the model into its runtime, ``infer()`` runs one
batch, ``describe()`` says what ran it, ``close()`` frees what it holds (TensorRT device buffers, sessions).
Use it as a context manager::

    with create_runner("ort-cpu", "model.onnx", threads=2) as r:
        out, timing = r.infer(x)

A backend is one file in this package that subclasses :class:`BaseRunner` and registers itself with
``@register_backend("name")``.  Nothing here imports numpy or a runtime: the CLI reads
:func:`list_backends` for its ``--backend`` choices and must import fast.
"""

from __future__ import annotations

from pathlib import Path

from ...errors import EdgekdError

_BACKENDS: dict[str, tuple[type, dict]] = {}
_ALIASES: dict[str, str] = {}


class BaseRunner:
    """One model file on one runtime.  Subclasses set the class attributes and implement the methods."""

    name = "base"              # the registered backend name (set by register_backend)
    model_kind = "onnx"        # the model files it runs: "onnx", "engine" (TensorRT), "tflite" (LiteRT) or "torch" (.pt)
    runtime = ""               # the target-file runtime it belongs to: onnxruntime, openvino, tensorrt, litert, torch
    accelerator = "cpu"        # "cpu" or "cuda": an available accelerator backend wins over a CPU one in auto
    precisions = ("fp32", "int8")  # model precisions that run natively here (edgekd fit candidates)
    accuracy_batch = 8         # batch size of the accuracy pass

    def __init__(self, path, threads: int = 1, precision: str = "fp32", **options):
        self.path, self.threads, self.precision, self.options = Path(path), threads, precision, options
        self.is_open = False

    @classmethod
    def unavailable(cls, **options) -> str | None:
        """Why this backend cannot run on this machine (one line), or None when it can."""
        return None

    def open(self) -> "BaseRunner":
        raise NotImplementedError

    def close(self) -> None:
        self.is_open = False

    def infer(self, x):
        """``(output, timings in seconds)``; timings hold ``compute`` and, for device backends, ``transfer``."""
        raise NotImplementedError

    def describe(self) -> dict:
        return {"backend": self.name, "runtime": self.runtime, "providers": [], "threads": self.threads}

    def metadata(self) -> dict:
        """The edgekd metadata the model carries (task, input shape, normalisation, reference metrics)."""
        return {}

    def input_shape(self) -> list:
        """The model input's shape; dynamic axes are None (or a name)."""
        return []

    def __enter__(self):
        if not self.is_open:
            self.open()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):  # a runner dropped without close() still frees device memory
        try:
            if getattr(self, "is_open", False):
                self.close()
        except Exception:
            pass


def installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (torch alone takes seconds)."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def register_backend(name: str, aliases: tuple[str, ...] = (), **defaults):
    """Class decorator: register ``cls`` as backend ``name``; ``defaults`` are passed to its constructor."""

    def wrap(cls):
        variant = type(cls.__name__, (cls,), {"name": name, "__module__": cls.__module__, "__doc__": cls.__doc__})
        _BACKENDS[name] = (variant, defaults)
        for a in aliases:
            _ALIASES[a] = name
        return cls

    return wrap


def providers_by_backend() -> dict[str, str]:
    """ONNX Runtime backends and their execution provider (``ort-cpu`` -> ``CPUExecutionProvider``)."""
    _load()
    return {n: d["provider"] for n, (_, d) in _BACKENDS.items() if "provider" in d}


def _load() -> None:
    from . import ort, openvino, tensorrt, litert, torch_ref  # noqa: F401  (each registers its backends)


def list_backends(kind: str | None = None, aliases: bool = False) -> list[str]:
    """Registered backend names (in registration order), optionally only those running ``kind`` model files."""
    _load()
    names = [n for n, (cls, _) in _BACKENDS.items() if kind is None or cls.model_kind == kind]
    if aliases:
        names += [a for a, n in _ALIASES.items() if a not in names and n in names]
    return names


def backend_class(name: str) -> type:
    """The runner class of backend ``name`` (or one of its aliases); one line for an unknown name."""
    _load()
    name = _ALIASES.get(name, name)
    if name not in _BACKENDS:
        raise EdgekdError(f"unknown backend {name!r}; use one of: auto, {', '.join(list_backends(aliases=True))}")
    return _BACKENDS[name][0]


def canonical(name: str) -> str:
    """An alias (``onnxruntime``) -> the backend it stands for (``ort-cpu``)."""
    _load()
    return _ALIASES.get(name, name)


def unavailable(name: str) -> str | None:
    """Why backend ``name`` cannot run here, or None."""
    cls = backend_class(name)
    return cls.unavailable(**_BACKENDS[cls.name][1])


def create_runner(name: str, path, threads: int = 1, precision: str = "fp32", **options) -> BaseRunner:
    """A closed runner of backend ``name`` for the model file ``path``; open it (or use ``with``)."""
    cls = backend_class(name)
    return cls(path, threads=threads, precision=precision, **{**_BACKENDS[cls.name][1], **options})


def auto_backend(kind: str, target: dict | None) -> str:
    """The backend ``--backend auto`` picks for a ``kind`` model on ``target`` on this machine.

    Candidates follow the target's ``runtimes`` (ONNX Runtime expanded in the order of its ``providers``);
    an available accelerator backend wins over CPU ones; among CPU backends the target's order decides.
    Without any, the first available backend for the file kind (ONNX Runtime CPU for ONNX).
    """
    target = target or {}
    runtimes = target.get("runtimes") or ["onnxruntime"]
    providers = target.get("providers") or ["CPUExecutionProvider"]
    names = []
    for rt in runtimes:
        mine = [(n, _BACKENDS[n][1].get("provider")) for n in list_backends(kind) if _BACKENDS[n][0].runtime == rt]
        names += [n for n, p in mine if p is None]
        names += [n for p in providers for n, q in mine if q == p]
    names = [n for n in names if backend_class(n).accelerator != "cpu"] + [n for n in names if backend_class(n).accelerator == "cpu"]
    for n in names + list_backends(kind):
        if unavailable(n) is None:
            return n
    return list_backends(kind)[0]
