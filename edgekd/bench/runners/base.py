"""The bench runner protocol and the backend registry (Polygraphy's ``BaseRunner``, timm's registry manner).

A runner is created closed and cheap; ``open()`` loads the model into its runtime, ``infer()`` runs one
batch, ``describe()`` says what ran it, ``close()`` frees what it holds (TensorRT device buffers, sessions).
Use it as a context manager::

    with create_runner("ort-cpu", "model.onnx", threads=2) as r:
        out, timing = r.infer(x)

A backend is one file in this package: a :class:`BaseRunner` subclass that says which model files it
opens (``model_kind``, ``suffixes``), implements ``open_impl``/``close_impl``/``infer``/``describe``
(and ``input_spec`` where its runtime can describe the input), and registers itself with
``@register_backend("name")``.  The first look-up imports every module of this package, so there is no
list of backends to edit.  Nothing here imports numpy or a runtime: the CLI reads :func:`list_backends`
for its ``--backend`` choices and must import fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...config import as_target, register_key_words
from ...registry import Registry


@dataclass(frozen=True)
class InputSpec:
    """One model input as its runtime declares it (Polygraphy's input metadata)."""

    name: str
    shape: tuple  # ints; a dynamic axis is None or the axis' name
    dtype: str | None  # numpy's name for the element type ("float32"); None when numpy has none
    runtime_type: str = ""  # the runtime's own name of the type, for messages ("tensor(float)")


class BaseRunner:
    """One model file on one runtime.  Subclasses set the class attributes and implement the methods.

    The base class owns the open/closed state (Polygraphy's ``activate``/``activate_impl``): ``open()``
    calls ``open_impl()`` once and marks the runner open, ``close()`` calls ``close_impl()`` only on an
    open runner.  A subclass implements the ``*_impl`` methods and never sets ``is_open`` itself.
    """

    name = "base"              # the registered backend name (set by register_backend)
    model_kind = "onnx"        # the model files it runs: "onnx", "engine" (TensorRT), "tflite" (LiteRT) or "torch" (.pt)
    suffixes = (".onnx",)      # their file suffixes: edgekd bench tells the kind of a file from these
    file_noun = "an ONNX model"  # such a file, as messages name it
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
        """Load the model into the runtime (once: an open runner is returned as it is)."""
        if not self.is_open:
            self.open_impl()
            self.is_open = True
        return self

    def open_impl(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Free what the runtime holds (sessions, device buffers); closing a closed runner does nothing."""
        if self.is_open:
            self.is_open = False
            self.close_impl()

    def close_impl(self) -> None:
        pass

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

    def placement(self, x) -> dict | None:
        """Where the model's nodes ran on input ``x``, by the runtime's own account, or None where it gives none.

        Called after the timed loops, never during them: a runner may profile a separate session
        (ONNX Runtime) or compile a second model (OpenVINO) for it.  The dict's form is in
        ``edgekd/bench/placement.py``: ``requested`` (the unit asked for: an execution provider, a
        delegate), ``nodes`` (all counted), ``units`` ({unit: {"nodes", "time_share"}}) and optionally
        ``precisions``; the bench warns when fewer than ``nodes`` ran on ``requested``.  A LiteRT runner
        fills it from its delegate (for example 234 of 234 nodes on the GPU delegate).
        """
        return None

    def input_spec(self) -> list[InputSpec] | None:
        """Every input the model declares (name, shape, element type), or None where this runtime does not say."""
        return None

    def __enter__(self):
        return self.open()

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


def _import_runner_modules() -> None:
    """Import every module of this package: each registers its own backends (one file per backend).

    ONNX Runtime's first (the core install's runtime: ``ort-cpu`` is the fallback of ``auto``), then the
    others by file name, so the registration order does not depend on the file system.
    """
    import importlib
    import pkgutil
    import sys

    here = sys.modules[__package__].__path__  # the package is imported before any of its modules
    names = sorted(m.name for m in pkgutil.iter_modules(here) if m.name != "base")
    for name in sorted(names, key=lambda n: n != "ort"):
        importlib.import_module(f"{__package__}.{name}")


#: backend name -> (runner class, its constructor defaults); aliases such as onnxruntime -> ort-cpu
BACKENDS = Registry("backend", choices=lambda names: "one of: auto, " + ", ".join(BACKENDS.names(aliases=True)),
                    loader=_import_runner_modules)


def register_backend(name: str, aliases: tuple[str, ...] = (), **defaults):
    """Class decorator: register ``cls`` as backend ``name``; ``defaults`` are passed to its constructor."""

    def wrap(cls):
        variant = type(cls.__name__, (cls,), {"name": name, "__module__": cls.__module__, "__doc__": cls.__doc__})
        BACKENDS.register(name, (variant, defaults), aliases=aliases)
        return cls

    return wrap


def _defaults(name: str) -> dict:
    return BACKENDS.get(name)[1]


def providers_by_backend() -> dict[str, str]:
    """ONNX Runtime backends and their execution provider (``ort-cpu`` -> ``CPUExecutionProvider``)."""
    return {n: _defaults(n)["provider"] for n in BACKENDS.names() if "provider" in _defaults(n)}


def list_backends(kind: str | None = None, aliases: bool = False) -> list[str]:
    """Registered backend names (in registration order), optionally only those running ``kind`` model files."""
    names = [n for n in BACKENDS.names() if kind is None or backend_class(n).model_kind == kind]
    if aliases:
        names += [a for a, n in BACKENDS.aliases.items() if a not in names and n in names]
    return names


def backend_class(name: str) -> type:
    """The runner class of backend ``name`` (or one of its aliases); one line for an unknown name."""
    return BACKENDS.get(name)[0]


def canonical(name: str) -> str:
    """An alias (``onnxruntime``) -> the backend it stands for (``ort-cpu``)."""
    return BACKENDS.canonical(name)


# The profile's bench.backend takes these words (config.py checks a profile's value against them as it loads).
register_key_words("bench.backend", lambda: ("auto", *list_backends(aliases=True)))


def kind_of_suffix(suffix: str) -> str | None:
    """The model kind (``onnx``, ``engine``, ``torch``...) whose runners open files ending in ``suffix``."""
    return next((backend_class(n).model_kind for n in BACKENDS.names() if suffix.lower() in backend_class(n).suffixes), None)


def file_kinds() -> dict[str, type]:
    """Each model kind -> the first runner class of that kind (its suffixes and noun name the files)."""
    out: dict[str, type] = {}
    for n in BACKENDS.names():
        out.setdefault(backend_class(n).model_kind, backend_class(n))
    return out


def unavailable(name: str) -> str | None:
    """Why backend ``name`` cannot run here, or None."""
    cls = backend_class(name)
    return cls.unavailable(**_defaults(cls.name))


def create_runner(name: str, path, threads: int = 1, precision: str = "fp32", **options) -> BaseRunner:
    """A closed runner of backend ``name`` for the model file ``path``; open it (or use ``with``)."""
    cls = backend_class(name)
    return cls(path, threads=threads, precision=precision, **{**_defaults(cls.name), **options})


def auto_backend(kind: str, target) -> str:
    """The backend ``--backend auto`` picks for a ``kind`` model on ``target`` on this machine.

    Candidates follow the target's ``runtimes`` (ONNX Runtime expanded in the order of its ``providers``);
    an available accelerator backend wins over CPU ones; among CPU backends the target's order decides.
    Without any, the first available backend for the file kind (ONNX Runtime CPU for ONNX).
    """
    target = as_target(target)  # a TargetConfig, its dict, or None
    runtimes = (target.runtimes if target else None) or ["onnxruntime"]
    providers = (target.providers if target else None) or ["CPUExecutionProvider"]
    names = []
    for rt in runtimes:
        mine = [(n, _defaults(n).get("provider")) for n in list_backends(kind) if backend_class(n).runtime == rt]
        names += [n for n, p in mine if p is None]
        names += [n for p in providers for n, q in mine if q == p]
    names = [n for n in names if backend_class(n).accelerator != "cpu"] + [n for n in names if backend_class(n).accelerator == "cpu"]
    for n in names + list_backends(kind):
        if unavailable(n) is None:
            return n
    return list_backends(kind)[0]
