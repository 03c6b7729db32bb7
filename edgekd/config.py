"""Profiles and targets: one schema, loading, command-line overrides, validation, resolved dump.

A *target* (``targets/*.toml``) states facts about a device; a *profile*
(``profiles/*.toml``) is a recipe that points at a target.  A profile is named
(``jetson``) or given as a path to the user's own TOML file.  Every key can be
overridden from the command line as ``section.key=value``.  Validation reports
every mistake of a file at once, one line each; the resolved configuration is
saved in the run directory.

The schema is written once, in nanoGPT's ``GPTConfig`` manner: a dataclass per
section whose fields carry the default, and in their metadata the kind, range
or choices, help text and command-line option of each key.  Defaults, validation,
the options' help and their mapping to keys, and the TOML dump all come from it.

Loading (profiles, ``--set``, options) works on the plain nested dict that files hold
(``config.json``, a checkpoint's ``"config"``, read with ``weights_only=True``); the code reads a
:class:`RunConfig` made of the same dataclasses (``cfg.train.lr``).  :meth:`RunConfig.from_dict` is
the one place that reads a config an older edgekd wrote (:data:`MIGRATIONS`), :meth:`RunConfig.to_dict`
the one that writes it.
"""

from __future__ import annotations

import copy
import math
from dataclasses import Field, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Optional

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python < 3.11
    import tomli as tomllib

from .errors import EdgekdError
from .registry import Registry

RESOURCES = Path(__file__).parent / "resources"
PROFILE_DIR = RESOURCES / "profiles"
TARGET_DIR = RESOURCES / "targets"


# Word lists served by registries are read when a value is checked or help is shown, never at import:
# the registries load their modules lazily, and the CLI must import fast.
def _tasks() -> list[str]:
    from .tasks import list_tasks

    return list_tasks()


def _distances() -> list[str]:
    from .distill.registry import list_distances

    return list_distances()


def _distances_help() -> str:
    from .distill.registry import distances_help

    return f"{distances_help()} {{default}}"


def _projections() -> list[str]:
    from .distill.registry import list_projections

    return list_projections()


def _normalizations() -> tuple[str, ...]:
    from .distill.registry import NORMALIZATIONS

    return NORMALIZATIONS


def _spectral_norms() -> tuple[str, ...]:
    from .distill.registry import SPECTRAL_NORMS

    return SPECTRAL_NORMS


def _spectral_scopes() -> tuple[str, ...]:
    from .distill.registry import SPECTRAL_SCOPES

    return SPECTRAL_SCOPES


# Word lists that a later floor owns: the bench backends, the export formats and precisions, the teacher kinds'
# help.  That floor registers its list here when it is imported (bench/runners/base.py, export/formats.py,
# models/teacher_kinds.py: the import runs down, to config), and the schema reads it when a value is checked or
# help is shown.  The commands floor imports those three modules before it reads a profile
# (edgekd/commands/__init__.py), so every command checks these keys as it loads them; library code that loads a
# profile without them has the key checked by its owner where the value is used (its registry's one line).
KEY_WORDS = Registry("key with a later floor's words")


def register_key_words(key: str, words: Callable[[], Any]) -> None:
    """``words()`` is the list the key ``section.key`` takes (or, for a help key, its help text): read on use."""
    KEY_WORDS.register(key, words)


def _words(key: str) -> Callable[[], tuple[str, ...] | None]:
    """The choices of ``key`` as its owner registered them; None while the owner is not imported (then it checks)."""
    return lambda: tuple(KEY_WORDS.get(key)()) if key in KEY_WORDS else None


def _data_formats() -> list[str]:
    from .data.formats import list_data_formats

    return list_data_formats()


# --------------------------------------------------------------------------- field builders
def _key(default, kind: str, lo=None, hi=None, *, choices=None, help: str | Callable[[], str] = "",
         cli: bool | str = False, dest: str | None = None, metavar: str | None = None, cli_choice: bool = True) -> Field:
    """One key: its default, and in metadata its kind, range (or list length) or choices, help and option.

    ``cli``: True for the option ``--key-name``, a string for another flag, False for none (``--set`` only).
    ``help`` may hold ``{default}``, replaced by the shipped profiles' values in ``--help``.
    ``dest``, ``metavar``: click's, where the flag's own would not do.
    ``cli_choice=False`` leaves an unknown word to the config's own message instead of click's.
    """
    meta = {"kind": kind, "lo": lo, "hi": hi, "choices": choices, "help": help, "cli": cli, "dest": dest,
            "metavar": metavar, "cli_choice": cli_choice}
    if isinstance(default, list):
        return field(default_factory=lambda d=tuple(default): list(d), metadata=meta)
    return field(default=default, metadata=meta)


def _str(default: str, **kw) -> Field:
    return _key(default, "str", **kw)


def _bool(default: bool, **kw) -> Field:
    return _key(default, "bool", **kw)


def _int(default: int, lo=None, hi=None, **kw) -> Field:
    return _key(default, "int", lo, hi, **kw)


def _float(default: float, lo=None, hi=None, **kw) -> Field:
    return _key(default, "float", lo, hi, **kw)


def _float_or_auto(default, lo=None, hi=None, **kw) -> Field:
    return _key(default, "float_auto", lo, hi, **kw)


def _choice(default: str, choices, **kw) -> Field:
    """``choices``: a tuple, or a callable returning the names (a registry, read lazily)."""
    return _key(default, "choice", choices=choices, **kw)


def _intlist(default, lo: int, hi: int, **kw) -> Field:
    return _key(default, "intlist", lo, hi, **kw)


def _strlist(default, **kw) -> Field:
    return _key(default, "strlist", **kw)


def _task_help() -> str:
    return f"{' | '.join(_tasks())} {{default}}"


def _data_format_help() -> str:
    return (f"Dataset format when it cannot be detected from the path (edgekd data inspect shows it): "
            f"auto, {', '.join(_data_formats())} [auto].")


def _teacher_help() -> str:
    return KEY_WORDS.get("distill.teacher")() if "distill.teacher" in KEY_WORDS else "A teacher kind (edgekd teacher list)."


# --------------------------------------------------------------------------- the schema
@dataclass
class ProfileHeader:
    """The profile's top-level keys (the section named "" while loading)."""

    name: str = _str("", help="The profile's name [the file's stem].")
    target: str = _str("", help="The target it is for: a name (targets/) or a path to a TOML file, relative to the profile.")
    description: str = _str("", help="One line about the recipe.")


@dataclass
class ModelConfig:
    """[model]: the student network and the task it learns."""

    student: str = _str("mobilenetv2_100", cli=True,
                        help="Student encoder: mobilenetv2_100, efficientnet_b0 or any timm CNN name {default}.")
    student_weights: str = _str("imagenet", cli=True,
                                help="Initialise the encoder: 'imagenet' (from an installed weights package, see README), a local "
                                     ".pth/.pt/.safetensors file (torchvision, timm or efficientnet_pytorch names), or 'none' "
                                     "(random) {default}.")
    student_tap: str = _choice("stage", ("stage", "head"), cli=True,
                               help="Z_s: the encoder's last stage (MobileNetV2: 320 ch) or the head conv after it (1280 ch, "
                                    "kept in the model) [stage].")
    decoder_channels: list = _intlist([96, 64, 32, 24, 16], 1, 5, help="Channels of the decoder's blocks, coarse to fine.")
    task: str = _choice("depth", _tasks, cli=True, cli_choice=False, help=_task_help)
    compile: str = _choice("off", ("off", "graph", "inductor", "reduce-overhead", "max-autotune"), cli="--compile",
                           dest="compile_mode",
                           help="Faster steps: 'graph' captures the whole step as a CUDA graph; others are torch.compile modes [off].")


@dataclass
class DataConfig:
    """[data]: what the student learns from, at which size."""

    data: str = _str("synthetic", cli=True, help="'synthetic' (embedded procedural scenes) or a dataset path {default}.")
    data_format: str = _str("auto", cli=True, help=_data_format_help)
    image_size: list = _intlist([256, 320], 2, 2, cli=True, metavar="H W",
                                help="Input size; divisible by the encoder stride (32) {default}.")
    max_depth: float = _float(10.0, 0.1, 1000.0, help="Depth task: the largest depth (metres) the head predicts and metrics count.")
    direction: str = _choice("AtoB", ("AtoB", "BtoA"), cli=True, help="pix2pix A|B images: which half is the input [AtoB].")
    depth_scale: float = _float(0.0, 0.0, 100.0, cli=True,
                                help="Depth PNGs: metres per stored unit (0: 16-bit PNGs in millimetres; an 8-bit depth PNG "
                                     "needs it, e.g. 0.04 for 0-10.2 m) [0].")
    seed: int = _int(0, 0, 2**31 - 1, help="Which synthetic scenes (independent of train.seed).")


@dataclass
class DistillConfig:
    """[distill]: the teacher, the distance to it, and the spectral regulariser (docs/distillation.md)."""

    teacher: str = _str("random", cli=True, help=_teacher_help)
    teacher_arch: str = _str("vit_base_patch32_224", help="The timm model a 'random' teacher is built as.")
    teacher_weights: str = _str("", cli=True, metavar="PATH",
                                help="Local weights file for a named timm teacher (FILE or NAME=FILE), or 'imagenet' for the file a pip "
                                     "package ships (nothing is downloaded).")
    teacher_layer: str = _str("", cli=True,
                              help="ONNX teacher: node output to distil from (edgekd teacher inspect lists them); HED: conv1..conv5.")
    teacher_norm: str = _str("", cli=True,
                             help="Input normalisation the teacher expects: imagenet | zero-one | caffe | MEAN,STD (':bgr' for BGR) "
                                  "[teacher's own].")
    method: str = _choice("fitnet", _distances, cli=True, help=_distances_help)
    projection: str = _choice("inverted", _projections, cli=True,
                              help="inverted: d(Z_s, P(Z_t)), the teacher projected onto the student; traditional: d(P(Z_s), Z_t) "
                                   "{default}.")
    teacher_tap: str = _choice("norm", ("norm", "raw"), cli=True,
                               help="Teacher features after the model's final norm (ViT tokens as its head sees them) or raw. [norm]")
    weight: Any = _float_or_auto("auto", 0.0, 1e6, cli="--distill-weight",
                                 help="w in L_task + w * L_distill, or 'auto': w makes the distillation gradient on Z_s --grad-ratio "
                                      "times the task's.")
    grad_ratio: float = _float(0.3, 1e-6, 1e3, cli=True, help="Target |grad aux| / |grad task| on Z_s for 'auto' weights.")
    recalibrate_every: int = _int(20, 0, 10**9, cli=True,
                                  help="Re-measure the gradient ratio and reset 'auto' weights every N steps (0 = only before the "
                                       "first step) [20].")
    normalize: str = _choice("none", _normalizations, cli=True,
                             help="Non-affine normalisation of both sides before the distance.")
    projector_lr: float = _float(0.0, 0.0, 10.0, cli=True, help="Projector learning rate (0 = the student's).")
    projector_weight_decay: float = _float(1e-4, 0.0, 10.0, cli=True,
                                           help="Projector weight decay (decoupled, AdamW; ignored when --projector-shrinkage is set).")
    projector_shrinkage: float = _float(0.0, 0.0, 1.0, cli=True,
                                        help="Fraction of the projector's initial weights that decay alone leaves at the end of the "
                                             "run, prod(1 - lr_t * wd) over the schedule; sets the weight decay (0 = use "
                                             "--projector-weight-decay) [0].")
    auto_projection_cka: float = _float(0.5, 0.0, 1.0,
                                        help="--projection auto: traditional when the debiased linear CKA of student and teacher "
                                             "features before training is at least this, else inverted [0.5].")
    fit_images: int = _int(16, 0, 10**6,
                           help="Training and validation images on which the projector's fit (R^2) is measured each epoch "
                                "(0 = off) [16].")
    cache_teacher: str = _choice("auto", ("auto", "on", "off"),
                                 help="Keep the teacher's features of each training image (auto: when they cannot change).")
    spectral: int = _int(0, 0, 100000, cli=True,
                         help="Spectral regulariser: keep the top r singular directions of Z_s, suppress the rest (0 = off; smaller r "
                              "= stronger).")
    spectral_weight: Any = _float_or_auto("auto", 0.0, 1e6, cli=True, help="Weight of the spectral term, or 'auto'.")
    spectral_norm: str = _choice("fro2", _spectral_norms, cli=True,
                                 help="fro2: squared Frobenius norm of the suppressed part; fro: non-squared (eq. 6); spectral: "
                                      "sigma_{r+1}.")
    spectral_scope: str = _choice("batch", _spectral_scopes, cli=True, help="One SVD over batch x positions, or one per image.")
    spectral_iters: int = _int(2, 1, 20, help="Warm-started subspace iterations per step that estimate the top-r directions.")


@dataclass
class TrainConfig:
    """[train]: the optimiser, the schedule, the run's size and where it runs."""

    epochs: int = _int(25, 1, 100000, cli=True, help="Passes over the training set {default}.")
    batch_size: int = _int(16, 1, 65536, cli=True, help="Images per optimiser step (per process) {default}.")
    lr: float = _float(1e-3, 1e-9, 10.0, cli=True, help="Peak learning rate (AdamW, warm-up then cosine) {default}.")
    weight_decay: float = _float(1e-4, 0.0, 10.0, help="AdamW's decoupled weight decay of the student.")
    warmup_steps: int = _int(50, 0, 10**9, cli=True,
                             help="Linear warm-up steps, used as given [the profile's (50), capped at 10% of the run's steps].")
    warmup_fraction: float = _float(0.1, 0.0, 1.0, help="The warm-up is capped at this fraction of the run's steps.")
    train_size: int = _int(795, 1, 10**9, cli=True, help="Number of training samples to use {default}.")
    val_size: int = _int(654, 1, 10**9, cli=True, help="Number of validation samples to use {default}.")
    workers: int = _int(2, 0, 256, cli=True, help="Data-loading worker processes {default}.")
    seed: int = _int(0, 0, 2**31 - 1, cli=True, help="Seed of the initialisation and data order [0].")
    device: str = _choice("auto", ("auto", "cpu", "cuda"), cli=True, help="[auto: cuda when there is a GPU]")
    max_steps: int = _int(0, 0, 10**9, cli=True, help="Stop after this many optimiser steps (0 = no limit) [0].")
    save_every_min: float = _float(10.0, 0.0, 10**6, cli=True,
                                   help="Also checkpoint last.pt every N minutes (0 = every step) {default}.")
    augment: bool = _bool(True, help="Augment the training images (flips, colour jitter; random crops except for depth).")
    eval_every: int = _int(1, 0, 10**6, help="Validate every N epochs (0 = only at the end).")
    train_eval_size: int = _int(64, 0, 10**9, help="Training images also scored at each validation (0 = none).")


@dataclass
class ExportConfig:
    """[export]: what edgekd export writes for the target."""

    format: str = _choice("onnx", _words("export.format"), help="onnx, or a TensorRT engine built from it.")
    precision: str = _choice("fp32", _words("export.precision"), help="What the target runs; fp32 model.onnx is always written too.")
    opset: int = _int(17, 13, 23, help="ONNX opset.")


@dataclass
class BenchConfig:
    """[bench]: how edgekd bench measures (>= 200 ms and >= 10 runs of warm-up: docs/architecture.md, "The deployment contract")."""

    backend: str = _choice("auto", _words("bench.backend"), help="auto: the first of the target's runtimes this machine has.")
    batch: int = _int(1, 1, 4096, help="Also measure at this batch size (batch 1 always).")
    warmup_iters: int = _int(10, 0, 10**6, help="Untimed runs first.")
    warmup_time: float = _float(0.2, 0.0, 3600.0, help="...and at least this many seconds.")
    min_iters: int = _int(100, 1, 10**7, help="Run at least this many timed iterations.")
    min_time: float = _float(2.0, 0.0, 36000.0, help="...and for at least this many seconds.")


@dataclass
class TargetConfig:
    """A target: facts about a device (targets/*.toml).  ``arch`` has no default: unset, no architecture check."""

    name: str = _str("", help="The target's name [the file's stem].")
    description: str = _str("", help="One line about the device.")
    accelerator: str = _choice("cpu", ("cpu", "cuda"), help="Where the model runs: a budget verdict is given only there.")
    arch: Optional[str] = _choice(None, ("x86_64", "aarch64"), help="CPU architecture: a budget verdict is given only on it.")
    runtimes: list = _strlist(["onnxruntime"], help="Runtimes in order of preference (bench --backend auto).")
    providers: list = _strlist(["CPUExecutionProvider"], help="ONNX Runtime execution providers in order of preference.")
    precisions: list = _strlist(["fp32"], help="Precisions the device runs (edgekd fit tries these).")
    threads: int = _int(4, 1, 1024, help="CPU threads to bench with.")
    memory_gb: float = _float(0.0, 0.0, 1e6, help="Device memory: bench's memory verdict compares the peak footprint with it (0 = none).")
    latency_budget_ms: float = _float(0.0, 0.0, 1e7, help="p90 latency at batch 1 the model must meet (0 = no budget).")


# Section name -> its dataclass, in the order of the resolved config (and of --print-config).
SECTIONS: dict[str, type] = {"model": ModelConfig, "data": DataConfig, "distill": DistillConfig, "train": TrainConfig,
                             "export": ExportConfig, "bench": BenchConfig}


def section_keys(section: str) -> dict[str, Field]:
    """The keys of ``[section]`` ("" = the profile's top-level keys), in order, with their metadata."""
    return {f.name: f for f in fields(ProfileHeader if section == "" else SECTIONS[section])}


# --------------------------------------------------------------------------- the typed run config
@dataclass
class ProfileInfo:
    """Where a resolved config came from (``cfg.profile``): the profile's name, its file and its line."""

    name: str = ""
    source: str = ""
    description: str = ""


# A config written by an older edgekd lacks the keys added since; each takes the value that edgekd behaved as
# before the key existed.  Listed here where that differs from the schema's default; every other missing key
# takes its default, which is what the old versions did: model.student_tap ("stage", before 59458cd),
# data.depth_scale (0: 16-bit PNGs in millimetres, before b4cf9e0), distill.teacher_layer and teacher_norm
# ("": the teacher's own), export.format ("onnx").  Read by RunConfig.from_dict only.
MIGRATIONS: dict[tuple[str, str], Any] = {
    ("train", "warmup_fraction"): 1.0,  # before b0c02e8 (2026-11-29): the warm-up was used as given, never capped
    ("distill", "teacher_tap"): "raw",  # before 59458cd (2026-11-29): teachers gave their last features without the final norm
    ("model", "student_weights"): "none",  # before 59458cd: the student started from random weights
}


def section_from_dict(name: str, values) -> Any:
    """``[name]`` of a config dict as its dataclass (``values`` already one is returned as it is).

    Keys the dict lacks are migrated (:data:`MIGRATIONS`) or take their default; keys the schema no longer
    has are dropped.  Lists are copied: the object never shares state with the dict it was read from.
    """
    cls = PARTS[name]
    if isinstance(values, cls):
        return values
    known = {f.name for f in fields(cls)}
    kw = {k: copy.deepcopy(v) for k, v in (values or {}).items() if k in known}
    for (section, key), old in MIGRATIONS.items():
        if section == name and key not in kw:
            kw[key] = old
    return cls(**kw)


def as_target(target) -> "TargetConfig | None":
    """A target's facts as :class:`TargetConfig`: ``None``, one already, or the dict :func:`load_target` and files hold."""
    return None if target is None else section_from_dict("target", target)


def target_config(name: str) -> TargetConfig:
    """The target ``name`` (targets/*.toml) or a path to a target TOML file, as :class:`TargetConfig`."""
    return section_from_dict("target", load_target(name))


def section_to_dict(part) -> dict[str, Any]:
    """A section's dataclass as the dict files hold; a key without a default (``target.arch``) only when set."""
    return {f.name: copy.deepcopy(getattr(part, f.name)) for f in fields(part)
            if not (getattr(part, f.name) is None and f.default is None)}


@dataclass
class RunConfig:
    """A resolved run config, typed: ``cfg.train.lr``.  Build one with :meth:`from_dict` (or :meth:`coerce`),
    derive one with :func:`dataclasses.replace`, write one with :meth:`to_dict`."""

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    bench: BenchConfig = field(default_factory=BenchConfig)
    profile: ProfileInfo = field(default_factory=ProfileInfo)
    target: TargetConfig = field(default_factory=TargetConfig)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        """A resolved config (``load_profile``'s), a ``config.json`` or a checkpoint's ``"config"``, of any edgekd version;
        a section the dict lacks takes its defaults."""
        return cls(**{name: section_from_dict(name, d.get(name)) for name in PARTS})

    @classmethod
    def coerce(cls, cfg: "RunConfig | dict") -> "RunConfig":
        """``cfg`` as a RunConfig: entry points take either the object or the dict a file or a test holds."""
        return cfg if isinstance(cfg, cls) else cls.from_dict(cfg)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The plain nested dict (JSON and ``torch.load(weights_only=True)`` safe) that files hold."""
        return {name: section_to_dict(getattr(self, name)) for name in PARTS}

    def with_sets(self, sets) -> "RunConfig":
        """This config with ``section.key=value`` strings applied (checked as ``--set`` is)."""
        return RunConfig.from_dict(apply_overrides(self.to_dict(), None, tuple(sets)))


# The parts of a resolved config, in its order: the profile's sections, then where it came from and the device.
PARTS: dict[str, type] = {**SECTIONS, "profile": ProfileInfo, "target": TargetConfig}


def default_config() -> dict[str, dict[str, Any]]:
    """Every section's defaults: what a user's minimal TOML inherits (a fresh nested dict)."""
    return {name: asdict(cls()) for name, cls in SECTIONS.items()}


def key_choices(section: str, key: str) -> tuple[str, ...]:
    """The words a choice key takes (a registry's names are read now)."""
    choices = section_keys(section)[key].metadata["choices"]
    return tuple((choices() if callable(choices) else choices) or ())


def key_help(section: str, key: str, default: str = "") -> str:
    """The help text of a key, with ``{default}`` replaced by ``default`` (the shipped profiles' values)."""
    text = section_keys(section)[key].metadata["help"]
    return (text() if callable(text) else text).replace("{default}", default)


def option_keys() -> list[tuple[str, str, str, str]]:
    """``(section, key, --flag, dest)`` of every key that has its own command-line option."""
    out = []
    for section in SECTIONS:
        for key, f in section_keys(section).items():
            cli = f.metadata["cli"]
            if cli:
                flag = cli if isinstance(cli, str) else f"--{key.replace('_', '-')}"
                out.append((section, key, flag, f.metadata["dest"] or flag[2:].replace("-", "_")))
    return out


def option_name(section: str, key: str) -> str:
    """The option that sets a key, as messages name it (``--distill-weight`` for distill.weight)."""
    return next((flag for s, k, flag, _ in option_keys() if (s, k) == (section, key)), f"--{key.replace('_', '-')}")


def option_overrides(kw: dict) -> dict[str, dict[str, Any]]:
    """Option values (click's keyword arguments, ``None`` = not given) as ``{section: {key: value}}``."""
    out: dict[str, dict[str, Any]] = {}
    for section, key, _, dest in option_keys():
        value = kw.get(dest)
        out.setdefault(section, {})[key] = list(value) if isinstance(value, tuple) else value  # nargs=2 -> a TOML list
    return out


# --------------------------------------------------------------------------- validation
def _fail(where: str, what: str) -> None:
    raise EdgekdError(f"{where} {what}")


def _check_number(where: str, value: Any, f: Field) -> Any:
    kind, lo, hi = f.metadata["kind"], f.metadata["lo"], f.metadata["hi"]
    name = type(value).__name__
    if kind == "float_auto" and value == "auto":
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind == "int" and not isinstance(value, int)):
        what = {"int": "an integer", "float": "a number", "float_auto": "a number or 'auto'"}[kind]
        _fail(where, f"must be {what}, got {name} {value!r}")
    value = value if kind == "int" else float(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        _fail(where, f"= {value} is out of range; use a value in [{lo}, {hi}]")
    return value


def _check_list(where: str, value: Any, f: Field) -> list:
    kind, lo, hi = f.metadata["kind"], f.metadata["lo"], f.metadata["hi"]
    if kind == "strlist":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            _fail(where, f"must be a list of strings, got {value!r}")
        return list(value)
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        _fail(where, f"must be a list of positive integers, got {value!r}")
    if not (lo <= len(value) <= hi):
        _fail(where, f"must have {lo if lo == hi else f'{lo} to {hi}'} entries, got {len(value)}")
    return list(value)


def check_value(where: str, value: Any, f: Field) -> Any:
    """``value`` as the key ``f`` holds it, or one line saying what is wrong (``where`` names the key or option)."""
    kind = f.metadata["kind"]
    if kind in ("int", "float", "float_auto"):
        return _check_number(where, value, f)
    if kind in ("intlist", "strlist"):
        return _check_list(where, value, f)
    if kind == "bool" and not isinstance(value, bool):
        _fail(where, f"must be true or false, got {value!r}")
    if kind == "str" and not isinstance(value, str):
        _fail(where, f"must be a string, got {type(value).__name__} {value!r}")
    if kind == "choice":
        choices = f.metadata["choices"]
        choices = choices() if callable(choices) else choices
        if choices is not None and value not in choices:  # None: the owner's registry checks it (KEY_WORDS)
            _fail(where, f"= {value!r} is not one of: {', '.join(choices)}")
    return value


class _Mistakes(list):
    """Every mistake found in one file (or one command line), raised together: one line each."""

    def check(self, where: str, value: Any, f: Field, default: Any = None) -> Any:
        try:
            return check_value(where, value, f)
        except EdgekdError as e:
            self.append(str(e))
            return default

    def raise_any(self) -> None:
        if self:
            raise EdgekdError("\n".join(self))


# --------------------------------------------------------------------------- profiles and targets
def _read_toml(path: Path, what: str) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise EdgekdError(f"{what} {path} is not valid TOML ({e}); fix the syntax at that line") from None
    except UnicodeDecodeError as e:
        raise EdgekdError(f"{what} {path} is not valid TOML (not UTF-8 text: byte {e.start}); save it as UTF-8 text") from None
    except OSError as e:
        raise EdgekdError(f"cannot read {what} {path}: {e.strerror}") from None


def _read_section(into: dict, values: dict, section: str, source: str, mistakes: _Mistakes) -> None:
    """Check the keys of one ``[section]`` of a profile into ``into`` (its defaults)."""
    keys = section_keys(section)
    for k, v in values.items():
        if k not in keys:
            mistakes.append(f"{source}: unknown key {section}.{k}; keys of [{section}] are: {', '.join(keys)}")
            continue
        into[k] = mistakes.check(f"{source}: {section}.{k}", v, keys[k], into[k])


def _profile_mistakes(raw: dict, source: str) -> tuple[dict, _Mistakes]:
    """The profile over the defaults (top-level keys under ""), and every mistake found on the way."""
    cfg = default_config()
    cfg[""] = asdict(ProfileHeader(name=Path(source).stem))
    mistakes, top = _Mistakes(), section_keys("")
    for key, value in raw.items():
        if isinstance(value, dict):
            if key not in SECTIONS:
                mistakes.append(f"{source}: unknown section [{key}]; sections are: {', '.join(SECTIONS)}")
            else:
                _read_section(cfg[key], value, key, source, mistakes)
        elif key not in top:
            mistakes.append(f"{source}: unknown top-level key {key!r}; top-level keys are: {', '.join(top)}")
        else:
            cfg[""][key] = mistakes.check(f"{source}: {key}", value, top[key], cfg[""][key])
    return cfg, mistakes


def validate_profile(raw: dict, source: str) -> dict:
    """Check every key against the schema, fill defaults, return a nested dict; one line per mistake, all at once."""
    cfg, mistakes = _profile_mistakes(raw, source)
    mistakes.raise_any()
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


def _target_path(name_or_path: str, base: Path | None) -> Path:
    p = Path(name_or_path).expanduser()
    candidates = [p] if p.suffix == ".toml" else []
    if base is not None and p.suffix == ".toml":
        candidates.append(base / p)
    candidates.append(TARGET_DIR / f"{name_or_path}.toml")
    path = next((c for c in candidates if c.exists()), None)
    if path is None:
        raise EdgekdError(f"unknown target {name_or_path!r}; use one of: {', '.join(list_targets())}, or a path to a .toml file")
    return path


def load_target(name_or_path: str, base: Path | None = None) -> dict:
    """A target's facts over :class:`TargetConfig`'s defaults (a key without one, ``arch``, only when given)."""
    path = _target_path(name_or_path, base)
    raw = _read_toml(path, "target")
    out = {k: v for k, v in asdict(TargetConfig(name=path.stem)).items() if v is not None}
    keys, mistakes = {f.name: f for f in fields(TargetConfig)}, _Mistakes()
    for k, v in raw.items():
        if k not in keys:
            mistakes.append(f"target {path}: unknown key {k!r}; keys are: {', '.join(keys)}")
            continue
        out[k] = mistakes.check(f"target {path}: {k}", v, keys[k], out.get(k))
    mistakes.raise_any()
    return out


def parse_override(text: str) -> tuple[str, str, Any]:
    """``train.lr=3e-4`` -> ("train", "lr", 3e-4).  Values are parsed as TOML, falling back to a string."""
    if "=" not in text:
        raise EdgekdError(f"override {text!r} must look like section.key=value (for example train.lr=3e-4)")
    key, _, value = text.partition("=")
    key = key.strip()
    section, _, k = key.rpartition(".")
    if section not in SECTIONS:
        raise EdgekdError(f"override {text!r}: unknown section {section!r}; sections are: {', '.join(SECTIONS)}")
    if k not in section_keys(section):
        raise EdgekdError(f"override {text!r}: unknown key {k!r}; keys of [{section}] are: {', '.join(section_keys(section))}")
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    return section, k, parsed


def apply_overrides(cfg: dict, overrides: dict | None = None, sets: tuple[str, ...] = ()) -> dict:
    """Apply ``section.key=value`` strings, then option values (``None`` = not given); every mistake at once."""
    mistakes = _Mistakes()
    for text in sets:
        try:
            section, k, v = parse_override(text)
        except EdgekdError as e:
            mistakes.append(str(e))
            continue
        cfg[section][k] = mistakes.check(f"--set {section}.{k}", v, section_keys(section)[k], cfg[section].get(k))
    for section, values in (overrides or {}).items():
        keys = section_keys(section)
        for k, v in values.items():
            if v is not None:  # messages name the option the user typed
                cfg[section][k] = mistakes.check(option_name(section, k), v, keys[k], cfg[section].get(k))
    mistakes.raise_any()
    return cfg


def load_profile(profile: str, overrides: dict[str, dict[str, Any]] | None = None, sets: tuple[str, ...] = ()) -> dict:
    """Load a profile, apply ``sets`` (``section.key=value``) and then ``overrides`` (from CLI options).

    Returns the resolved config: a nested dict with the profile's sections plus
    ``profile`` (name and source) and ``target`` (the device facts).
    """
    path = _profile_path(profile)
    raw = _read_toml(path, "profile")
    cfg, mistakes = _profile_mistakes(raw, str(path))
    top = cfg.pop("")
    if not top["target"] and not raw.get("target"):  # a target of the wrong type is already one of the mistakes
        mistakes.append(f"profile {path} names no target; add target = \"<name>\" (one of: {', '.join(list_targets())})")
    elif top["target"] and mistakes:  # an unknown target is one more mistake of this file
        try:
            _target_path(top["target"], path.parent)
        except EdgekdError as e:
            mistakes.append(str(e))
    mistakes.raise_any()
    cfg = apply_overrides(cfg, overrides, sets)
    cfg["profile"] = {"name": top["name"], "source": str(path), "description": top["description"]}
    cfg["target"] = load_target(top["target"], base=path.parent)
    return cfg


def effective_warmup(train: "TrainConfig | dict", total_steps: int) -> tuple[int, str]:
    """Warm-up steps for a run of ``total_steps``, and a line to show the user when it is not the configured one.

    A profile's warm-up (50 steps) is meant for its full recipe; a short run would spend all of it
    below the peak learning rate, so the warm-up is capped at ``warmup_fraction`` of the run
    (``--warmup-steps N`` sets the fraction to 1: N is used as given, up to the whole run).
    ``train``: the ``[train]`` section, or its dict (a checkpoint's).
    """
    train = section_from_dict("train", train)
    want, frac = int(train.warmup_steps), float(train.warmup_fraction)
    cap = int(math.ceil(frac * total_steps))
    steps = min(want, cap)
    if frac >= 1.0 and want >= total_steps > 0:
        return steps, f"warning: warm-up {want} steps covers the whole run ({total_steps} steps): the learning rate never reaches its peak"
    if steps < want:
        return steps, (f"warning: warm-up {want} steps is longer than {frac:.0%} of this run's {total_steps} steps; "
                       f"using {steps} (choose with --warmup-steps N)")
    return steps, ""


# --------------------------------------------------------------------------- dumps
def save_resolved(cfg: "RunConfig | dict", run_dir: Path) -> Path:
    """``run_dir/config.json``: the resolved config as :meth:`RunConfig.to_dict` writes it."""
    from .fileio import atomic_write_json

    return atomic_write_json(Path(run_dir) / "config.json", RunConfig.coerce(cfg).to_dict())


def toml_value(v: Any) -> str:
    """One value as TOML (the kinds the schema holds: bool, number, string, list of them)."""
    import json

    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return json.dumps(str(v))  # a TOML basic string


def dump_toml(raw: dict, first_line: str = "") -> str:
    """A profile as TOML text: the top-level keys, then one table per section."""
    lines = [first_line] if first_line else []
    lines += [f"{k} = {toml_value(v)}" for k, v in raw.items() if not isinstance(v, dict)]
    for section, values in raw.items():
        if isinstance(values, dict):
            lines += ["", f"[{section}]"] + [f"{k} = {toml_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def to_toml(cfg: dict, target: str | None = None) -> str:
    """A resolved config as a profile file that :func:`load_profile` reads back to the same sections.

    ``target``: how the file names its target [the resolved target's name, right for a shipped one].
    """
    raw = {"name": cfg["profile"]["name"], "target": target or cfg["target"]["name"],
           "description": cfg["profile"]["description"], **{s: cfg[s] for s in SECTIONS}}
    return dump_toml(raw, f"# The resolved recipe of {cfg['profile']['source']}")
