"""Profiles and targets: loading, command-line overrides, validation, resolved dump.

A *target* (``targets/*.toml``) states facts about a device; a *profile*
(``profiles/*.toml``) is a recipe that points at a target.  A profile is named
(``jetson``) or given as a path to the user's own TOML file.  Every key can be
overridden from the command line as ``section.key=value``.  Validation reports
one line per mistake; the resolved configuration is saved in the run directory.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python < 3.11
    import tomli as tomllib

from .bench.runners.base import list_backends
from .distill.registry import NORMALIZATIONS, SPECTRAL_NORMS, SPECTRAL_SCOPES, list_distances, list_projections
from .errors import EdgekdError

RESOURCES = Path(__file__).parent / "resources"
PROFILE_DIR = RESOURCES / "profiles"
TARGET_DIR = RESOURCES / "targets"

TASKS = ("depth", "segmentation", "classification", "colourisation", "translation")
METHODS = tuple(list_distances())  # the distance registry (edgekd/distill/registry.py)
PROJECTIONS = tuple(list_projections())
PRECISIONS = ("fp32", "fp16", "int8")
FORMATS = ("onnx", "tensorrt")
BACKENDS = ("auto", *list_backends(aliases=True))  # the bench runner registry (edgekd/bench/runners/)


def _int(lo=None, hi=None):
    return ("int", lo, hi)


def _float(lo=None, hi=None):
    return ("float", lo, hi)


def _choice(*options):
    return ("choice", options, None)


def _float_or_auto(lo=None, hi=None):
    return ("float_auto", lo, hi)


_STR = ("str", None, None)
_BOOL = ("bool", None, None)

# section -> key -> (kind, a, b).  The schema is the documentation of every key.
PROFILE_SCHEMA: dict[str, dict[str, tuple]] = {
    "": {"name": _STR, "target": _STR, "description": _STR},
    "model": {
        "student": _STR,  # any timm encoder that supports features_only
        "student_weights": _STR,  # "none", "imagenet" (a packaged file) or a path
        "student_tap": _choice("stage", "head"),
        "decoder_channels": ("intlist", 1, 5),
        "task": _choice(*TASKS),
        "compile": _choice("off", "graph", "inductor", "reduce-overhead", "max-autotune"),
    },
    "data": {
        "data": _STR,  # "synthetic" or a path
        "data_format": _STR,
        "image_size": ("intlist", 2, 2),
        "max_depth": _float(0.1, 1000.0),
        "direction": _choice("AtoB", "BtoA"),
        "seed": _int(0, 2**31 - 1),  # which synthetic scenes (independent of train.seed)
    },
    "distill": {
        "teacher": _STR,
        "teacher_arch": _STR,
        "teacher_weights": _STR,  # a file, or "imagenet" (the file a pip package ships)
        "teacher_layer": _STR,  # ONNX node output / HED stage; "" = automatic
        "teacher_norm": _STR,  # imagenet | zero-one | caffe | MEAN,STD[:bgr]; "" = the teacher's own
        "method": _choice(*METHODS),
        "projection": _choice(*PROJECTIONS),
        "teacher_tap": _choice("norm", "raw"),
        "weight": _float_or_auto(0.0, 1e6),
        "grad_ratio": _float(1e-6, 1e3),
        "normalize": _choice(*NORMALIZATIONS),
        "projector_lr": _float(0.0, 10.0),
        "projector_weight_decay": _float(0.0, 10.0),
        "cache_teacher": _choice("auto", "on", "off"),
        "spectral": _int(0, 100000),
        "spectral_weight": _float_or_auto(0.0, 1e6),
        "spectral_norm": _choice(*SPECTRAL_NORMS),
        "spectral_scope": _choice(*SPECTRAL_SCOPES),
        "spectral_iters": _int(1, 20),
    },
    "train": {
        "epochs": _int(1, 100000),
        "batch_size": _int(1, 65536),
        "lr": _float(1e-9, 10.0),
        "weight_decay": _float(0.0, 10.0),
        "warmup_steps": _int(0, 10**9),
        "warmup_fraction": _float(0.0, 1.0),  # the warm-up is capped at this fraction of the run's steps
        "train_size": _int(1, 10**9),
        "val_size": _int(1, 10**9),
        "workers": _int(0, 256),
        "seed": _int(0, 2**31 - 1),
        "device": _choice("auto", "cpu", "cuda"),
        "max_steps": _int(0, 10**9),
        "save_every_min": _float(0.0, 10**6),
        "augment": _BOOL,
        "eval_every": _int(0, 10**6),
        "train_eval_size": _int(0, 10**9),
    },
    "export": {
        "format": _choice(*FORMATS),
        "precision": _choice(*PRECISIONS),
        "opset": _int(13, 23),
    },
    "bench": {
        "backend": _choice(*BACKENDS),
        "batch": _int(1, 4096),
        "warmup_iters": _int(0, 10**6),
        "warmup_time": _float(0.0, 3600.0),
        "min_iters": _int(1, 10**7),
        "min_time": _float(0.0, 36000.0),
    },
}

TARGET_SCHEMA: dict[str, tuple] = {
    "name": _STR,
    "description": _STR,
    "accelerator": _choice("cpu", "cuda"),
    "arch": _choice("x86_64", "aarch64"),  # CPU architecture: a budget verdict is given only on it
    "runtimes": ("strlist", None, None),
    "providers": ("strlist", None, None),
    "precisions": ("strlist", None, None),
    "threads": _int(1, 1024),
    "memory_gb": _float(0.0, 1e6),
    "latency_budget_ms": _float(0.0, 1e7),
}

# Keys a profile may omit, with their defaults (what a user's minimal TOML inherits).
DEFAULTS: dict[str, dict[str, Any]] = {
    "model": {"student": "mobilenetv2_100", "student_weights": "imagenet", "student_tap": "stage", "decoder_channels": [96, 64, 32, 24, 16], "task": "depth", "compile": "off"},
    "data": {"data": "synthetic", "data_format": "auto", "image_size": [256, 320], "max_depth": 10.0, "direction": "AtoB", "seed": 0},
    "distill": {
        "teacher": "random",
        "teacher_arch": "vit_base_patch32_224",
        "teacher_weights": "",
        "teacher_layer": "",
        "teacher_norm": "",
        "method": "fitnet",
        "projection": "inverted",
        "teacher_tap": "norm",
        "weight": "auto",
        "grad_ratio": 0.3,
        "normalize": "none",
        "projector_lr": 0.0,
        "projector_weight_decay": 1e-4,
        "cache_teacher": "auto",
        "spectral": 0,
        "spectral_weight": "auto",
        "spectral_norm": "fro2",
        "spectral_scope": "batch",
        "spectral_iters": 2,
    },
    "train": {
        "epochs": 25,
        "batch_size": 16,
        "lr": 1e-3,
        "weight_decay": 1e-4,
        "warmup_steps": 50,
        "warmup_fraction": 0.1,
        "train_size": 795,
        "val_size": 654,
        "workers": 2,
        "seed": 0,
        "device": "auto",
        "max_steps": 0,
        "save_every_min": 10.0,
        "augment": True,
        "eval_every": 1,
        "train_eval_size": 64,
    },
    "export": {"format": "onnx", "precision": "fp32", "opset": 17},
    "bench": {"backend": "auto", "batch": 1, "warmup_iters": 10, "warmup_time": 0.2, "min_iters": 100, "min_time": 2.0},
}


def _read_toml(path: Path, what: str) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise EdgekdError(f"{what} {path} is not valid TOML ({e}); fix the syntax at that line") from None
    except OSError as e:
        raise EdgekdError(f"cannot read {what} {path}: {e.strerror}") from None


def _check_value(where: str, value: Any, spec: tuple) -> Any:
    kind, a, b = spec
    name = type(value).__name__
    if kind == "str":
        if not isinstance(value, str):
            raise EdgekdError(f"{where} must be a string, got {name} {value!r}")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise EdgekdError(f"{where} must be true or false, got {value!r}")
        return value
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise EdgekdError(f"{where} must be an integer, got {name} {value!r}")
    if kind == "float_auto":
        if value == "auto":
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise EdgekdError(f"{where} must be a number or 'auto', got {name} {value!r}")
        kind = "float"
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise EdgekdError(f"{where} must be a number, got {name} {value!r}")
        value = float(value)
    if kind in ("int", "float"):
        if (a is not None and value < a) or (b is not None and value > b):
            raise EdgekdError(f"{where} = {value} is out of range; use a value in [{a}, {b}]")
        return value
    if kind == "choice":
        if value not in a:
            raise EdgekdError(f"{where} = {value!r} is not one of: {', '.join(a)}")
        return value
    if kind == "intlist":
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
            raise EdgekdError(f"{where} must be a list of positive integers, got {value!r}")
        if not (a <= len(value) <= b):
            raise EdgekdError(f"{where} must have {a if a == b else f'{a} to {b}'} entries, got {len(value)}")
        return list(value)
    if kind == "strlist":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise EdgekdError(f"{where} must be a list of strings, got {value!r}")
        return list(value)
    raise AssertionError(kind)


def validate_profile(raw: dict, source: str) -> dict:
    """Check every key against :data:`PROFILE_SCHEMA`, fill defaults, return a nested dict."""
    cfg = copy.deepcopy(DEFAULTS)
    cfg[""] = {"name": Path(source).stem, "target": "", "description": ""}
    for key, value in raw.items():
        if isinstance(value, dict):
            if key not in PROFILE_SCHEMA or key == "":
                raise EdgekdError(
                    f"{source}: unknown section [{key}]; sections are: {', '.join(s for s in PROFILE_SCHEMA if s)}"
                )
            for k, v in value.items():
                if k not in PROFILE_SCHEMA[key]:
                    raise EdgekdError(
                        f"{source}: unknown key {key}.{k}; keys of [{key}] are: {', '.join(PROFILE_SCHEMA[key])}"
                    )
                cfg[key][k] = _check_value(f"{source}: {key}.{k}", v, PROFILE_SCHEMA[key][k])
        else:
            if key not in PROFILE_SCHEMA[""]:
                raise EdgekdError(f"{source}: unknown top-level key {key!r}; top-level keys are: name, target, description")
            cfg[""][key] = _check_value(f"{source}: {key}", value, PROFILE_SCHEMA[""][key])
    return cfg


def list_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.toml"))


def list_targets() -> list[str]:
    return sorted(p.stem for p in TARGET_DIR.glob("*.toml"))


def _profile_path(profile: str) -> Path:
    p = Path(profile).expanduser()
    if p.suffix == ".toml" or "/" in profile or p.exists():
        if not p.exists():
            raise EdgekdError(f"profile file {p} does not exist; give a TOML file or one of: {', '.join(list_profiles())}")
        return p
    shipped = PROFILE_DIR / f"{profile}.toml"
    if not shipped.exists():
        raise EdgekdError(f"unknown profile {profile!r}; use one of: {', '.join(list_profiles())}, or a path to a .toml file")
    return shipped


def load_target(name_or_path: str, base: Path | None = None) -> dict:
    p = Path(name_or_path).expanduser()
    candidates = [p] if p.suffix == ".toml" else []
    if base is not None and p.suffix == ".toml":
        candidates.append(base / p)
    candidates.append(TARGET_DIR / f"{name_or_path}.toml")
    path = next((c for c in candidates if c.exists()), None)
    if path is None:
        raise EdgekdError(f"unknown target {name_or_path!r}; use one of: {', '.join(list_targets())}, or a path to a .toml file")
    raw = _read_toml(path, "target")
    out = {"name": path.stem, "description": "", "accelerator": "cpu", "runtimes": ["onnxruntime"],
           "providers": ["CPUExecutionProvider"], "precisions": ["fp32"], "threads": 4, "memory_gb": 0.0,
           "latency_budget_ms": 0.0}
    for k, v in raw.items():
        if k not in TARGET_SCHEMA:
            raise EdgekdError(f"target {path}: unknown key {k!r}; keys are: {', '.join(TARGET_SCHEMA)}")
        out[k] = _check_value(f"target {path}: {k}", v, TARGET_SCHEMA[k])
    return out


def parse_override(text: str) -> tuple[str, str, Any]:
    """``train.lr=3e-4`` -> ("train", "lr", 3e-4).  Values are parsed as TOML, falling back to a string."""
    if "=" not in text:
        raise EdgekdError(f"override {text!r} must look like section.key=value (for example train.lr=3e-4)")
    key, _, value = text.partition("=")
    key = key.strip()
    section, _, k = key.rpartition(".")
    if section not in PROFILE_SCHEMA or not section:
        raise EdgekdError(f"override {text!r}: unknown section {section!r}; sections are: {', '.join(s for s in PROFILE_SCHEMA if s)}")
    if k not in PROFILE_SCHEMA[section]:
        raise EdgekdError(f"override {text!r}: unknown key {k!r}; keys of [{section}] are: {', '.join(PROFILE_SCHEMA[section])}")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    return section, k, parsed


# Command-line options whose name is not the key's (messages name the option the user typed).
OPTION_NAMES = {("distill", "weight"): "--distill-weight", ("model", "compile"): "--compile"}


def apply_overrides(cfg: dict, overrides: dict | None = None, sets: tuple[str, ...] = ()) -> dict:
    """Apply ``section.key=value`` strings, then option values (``None`` = not given), validating each."""
    for text in sets:
        section, k, v = parse_override(text)
        cfg[section][k] = _check_value(f"--set {section}.{k}", v, PROFILE_SCHEMA[section][k])
    for section, values in (overrides or {}).items():
        for k, v in values.items():
            if v is None:
                continue
            option = OPTION_NAMES.get((section, k), f"--{k.replace('_', '-')}")
            cfg[section][k] = _check_value(option, v, PROFILE_SCHEMA[section][k])
    return cfg


def load_profile(profile: str, overrides: dict[str, dict[str, Any]] | None = None, sets: tuple[str, ...] = ()) -> dict:
    """Load a profile, apply ``sets`` (``section.key=value``) and then ``overrides`` (from CLI options).

    Returns the resolved config: a nested dict with the profile's sections plus
    ``profile`` (name and source) and ``target`` (the device facts).
    """
    path = _profile_path(profile)
    raw = _read_toml(path, "profile")
    cfg = apply_overrides(validate_profile(raw, str(path)), overrides, sets)
    top = cfg.pop("")
    if not top["target"]:
        raise EdgekdError(f"profile {path} names no target; add target = \"<name>\" (one of: {', '.join(list_targets())})")
    cfg["profile"] = {"name": top["name"], "source": str(path), "description": top["description"]}
    cfg["target"] = load_target(top["target"], base=path.parent)
    return cfg


def effective_warmup(train: dict, total_steps: int) -> tuple[int, str]:
    """Warm-up steps for a run of ``total_steps``, and a line to show the user when it is not the configured one.

    A profile's warm-up (50 steps) is meant for its full recipe; a short run would spend all of it
    below the peak learning rate, so the warm-up is capped at ``warmup_fraction`` of the run
    (``--warmup-steps N`` sets the fraction to 1: N is used as given, up to the whole run).
    """
    want, frac = int(train["warmup_steps"]), float(train.get("warmup_fraction", 1.0))
    cap = int(math.ceil(frac * total_steps))
    steps = min(want, cap)
    if frac >= 1.0 and want >= total_steps > 0:
        return steps, f"warning: warm-up {want} steps covers the whole run ({total_steps} steps): the learning rate never reaches its peak"
    if steps < want:
        return steps, (f"warning: warm-up {want} steps is longer than {frac:.0%} of this run's {total_steps} steps; "
                       f"using {steps} (choose with --warmup-steps N)")
    return steps, ""


def save_resolved(cfg: dict, run_dir: Path) -> Path:
    from .fileio import atomic_write_json

    return atomic_write_json(Path(run_dir) / "config.json", cfg)

