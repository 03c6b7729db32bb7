"""The model card: what an exported file says about itself, the one contract between export and bench (torch-free).

``edgekd export`` writes a card into every file it makes: an ONNX file's ``metadata_props``, a LiteRT
file's ``edgekd`` metadata entry (bench/tflite_file.py), a TensorRT engine's side file
``model.<precision>.engine.json`` (:func:`engine_card_path`); ``edgekd bench`` reads it back to rebuild
the task, feed the model its input and judge it against its fp32 reference.  On disk a card is a flat
map of strings (:meth:`ModelCard.to_props`; lists and dicts as JSON), so any runtime's metadata can hold
it; :meth:`ModelCard.from_props` reads one back, and reads a partial or foreign map without failing
(:attr:`ModelCard.is_edgekd` tells them apart).  Keys the card does not know (a LiteRT file's
``output_layout``, the INT8 file's ``int8_*``) are kept as they are in :attr:`ModelCard.extra`.

Nothing here imports torch or numpy: a device that only benches reads the card.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from .errors import EdgekdError

# The checkpoint the file was made from (export/source.py writes them, bench/provenance.py tells a stale file by them).
SOURCE_KEYS = ("checkpoint", "checkpoint_step", "checkpoint_sha256")


@dataclass
class ModelCard:
    """One exported file's card.  Fields marked JSON are stored as JSON strings in the props."""

    task: str | None = None  # None: no edgekd card (a third-party model)
    task_args: dict = field(default_factory=dict)  # JSON: what rebuilds the task (class names, ...)
    input_name: str = "input"
    input_shape: list = field(default_factory=list)  # JSON: [-1, 3, H, W] (NCHW) or [1, H, W, 3] (NHWC)
    layout: str = "NCHW"
    normalisation: dict = field(default_factory=dict)  # JSON: {"mean", "std", "scale"}
    output: str = ""
    output_range: list | None = None  # JSON, "" when the task states none
    class_names: list = field(default_factory=list)  # JSON
    student: str = ""
    distillation: dict = field(default_factory=dict)  # JSON: taps, initialisation, teacher, method (docs/distillation.md)
    profile: str = ""
    target: str = ""
    precision: str = "fp32"
    primary_metric: str = ""
    reference_metrics: dict = field(default_factory=dict)  # JSON: the checkpoint's validation figures
    reference_eval: dict = field(default_factory=dict)  # JSON: the set-up they were measured on (data, format, seed, n)
    edgekd_version: str = ""
    source: dict = field(default_factory=dict)  # SOURCE_KEYS, as strings
    extra: dict = field(default_factory=dict)  # every other prop, as it is

    _JSON = ("task_args", "input_shape", "normalisation", "output_range", "class_names", "distillation",
             "reference_metrics", "reference_eval")
    _ORDER = ("edgekd_version", "task", "task_args", "input_name", "input_shape", "layout", "normalisation", "output",
              "output_range", "class_names", "student", "distillation", "profile", "target", "precision", "primary_metric",
              "reference_metrics", "reference_eval")

    @property
    def is_edgekd(self) -> bool:
        """Whether the file carries an edgekd card (it names its task)."""
        return self.task is not None

    @property
    def input_hw(self) -> tuple[int, int] | None:
        """(H, W) of the input the card states, whatever the layout; None when it states none."""
        s = self.input_shape
        if len(s) != 4:
            return None
        return (int(s[1]), int(s[2])) if self.layout == "NHWC" else (int(s[2]), int(s[3]))

    @property
    def plain_reference_metrics(self) -> dict:
        """The reference figures that are numbers (per-class lists left out)."""
        return {k: v for k, v in self.reference_metrics.items() if not isinstance(v, list)}

    def replace(self, **changes) -> "ModelCard":
        return replace(self, **changes)

    def to_props(self) -> dict[str, str]:
        """The card as a flat map of strings, the form every file keeps it in."""
        props = {}
        for name in self._ORDER:
            value = getattr(self, name)
            if name == "output_range":
                props[name] = json.dumps(value) if value else ""
            elif name in self._JSON:
                props[name] = json.dumps(value)
            else:
                props[name] = "" if value is None else str(value)
        props.update({k: "" if v is None else str(v) for k, v in self.source.items()})
        props.update({k: str(v) for k, v in self.extra.items()})
        return props

    @classmethod
    def from_props(cls, props: dict | None, where: str = "the model") -> "ModelCard":
        """The card in ``props`` (a file's metadata); missing keys take the defaults, a file without one gives an
        empty card (``is_edgekd`` False); a damaged JSON value is refused in one line."""
        props = dict(props or {})
        known = {f.name for f in fields(cls)} - {"source", "extra"}
        values = {}
        for name in known & props.keys():
            raw = props[name]
            if name in cls._JSON:
                values[name] = _json(raw, name, where, None if name == "output_range" else _EMPTY[name])
            else:
                values[name] = raw
        source = {k: props[k] for k in SOURCE_KEYS if k in props}
        extra = {k: v for k, v in props.items() if k not in known and k not in SOURCE_KEYS}
        return cls(**values, source=source, extra=extra)

    @classmethod
    def of_run(cls, task, cfg, ckpt: dict, precision: str, source: dict | None = None) -> "ModelCard":
        """The card of a student trained by edgekd: its ``task``, run config ``cfg`` and checkpoint ``ckpt`` (the
        ``task_args`` and ``metrics`` it holds); ``source``: the checkpoint's name, step and sha256 (export/source.py)."""
        from . import __version__
        from .data.transforms import MEAN, STD

        from .config import RunConfig

        cfg = RunConfig.coerce(cfg)  # old checkpoints' configs migrated there (teacher_tap, student_weights)
        meta, d, m, dist = task.metadata(), cfg.data, cfg.model, cfg.distill
        return cls(
            task=task.name, task_args=dict(ckpt.get("task_args", {})), input_shape=[-1, 3, *d.image_size],
            normalisation={"mean": list(MEAN), "std": list(STD), "scale": 1 / 255}, output=meta.get("output", ""),
            output_range=meta.get("output_range") or None, class_names=meta.get("class_names", []), student=m.student,
            # How the model was distilled (docs/distillation.md): the feature taps, the initialisation, the teacher.
            distillation={"student_tap": m.student_tap, "student_weights": m.student_weights,
                          "teacher": dist.teacher, "teacher_tap": dist.teacher_tap,
                          "method": dist.method, "projection": dist.projection, "spectral": dist.spectral},
            profile=cfg.profile.name, target=cfg.target.name, precision=precision, primary_metric=task.primary_metric,
            reference_metrics={k: v for k, v in (ckpt.get("metrics") or {}).items() if not isinstance(v, list)},
            reference_eval={"data": d.data, "data_format": d.data_format, "direction": d.direction,
                            "depth_scale": d.depth_scale, "split": "val", "n": cfg.train.val_size, "seed": d.seed},
            edgekd_version=__version__, source=dict(source or {}))


_EMPTY = {"task_args": {}, "input_shape": [], "normalisation": {}, "class_names": [], "distillation": {},
          "reference_metrics": {}, "reference_eval": {}}


def _json(raw: str, name: str, where: str, empty):
    if raw in ("", None):
        return empty
    try:
        return json.loads(raw)
    except ValueError:
        raise EdgekdError(f"{where}: its model card's {name} is not JSON ({str(raw)[:60]!r}); export it again with edgekd export") from None


def engine_card_path(engine_path) -> Path:
    """Where a TensorRT engine's card is kept (engines carry no metadata): ``model.int8.engine.json``."""
    return Path(str(engine_path) + ".json")
