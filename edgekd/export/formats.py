"""The registries of export formats (``--format``) and precisions (``--precision``), in timm's manner.

``edgekd export`` always writes the fp32 ONNX file first and checks it against PyTorch.  A *precision*
is the step that then makes the file the target runs (fp16 ONNX, INT8 QDQ ONNX); a *format* is the
step that turns that file into what the device loads (nothing more for ONNX, an engine for TensorRT,
``.tflite`` files for LiteRT).
Steps are named as ``"module:function"`` and imported only when run, so this module (read by the CLI's
``--help`` and by the profile schema) imports neither torch nor numpy.

* a precision step is called with the :class:`~edgekd.export.job.ExportJob` and returns the ONNX file
  it made (the source of a later format step), after adding its record (and any failed check) to the job;
* a format step is called with the job and that source file, and adds its own record.

Adding one = one new module with its step function + one ``register_*`` line below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..config import register_key_words
from ..lazy import resolve
from ..registry import Registry


@dataclass(frozen=True)
class ExportStep:
    """A registered format or precision: its name, a one-line summary, and its step (None: nothing to do)."""

    name: str
    summary: str
    step: str | None = None  # "package.module:function"
    requires: str | None = None  # "package.module:function" raising one line when what the step needs is not installed

    def resolve(self) -> Callable | None:
        if self.step is None:
            return None
        return resolve(self.step)

    def check_installed(self) -> None:
        """Refuse in one line, before any work, when the step's converter is missing."""
        if self.requires is not None:
            resolve(self.requires)()


FORMATS = Registry("export format")
PRECISIONS = Registry("precision")
_FORMATS, _PRECISIONS = FORMATS.entries, PRECISIONS.entries  # the dicts themselves (tests patch them)


def register_format(name: str, summary: str, step: str | None = None, requires: str | None = None,
                    aliases: tuple[str, ...] = ()) -> ExportStep:
    return FORMATS.register(name, ExportStep(name, summary, step, requires), aliases=aliases)


def register_precision(name: str, summary: str, step: str | None = None) -> ExportStep:
    return PRECISIONS.register(name, ExportStep(name, summary, step))


def list_formats(aliases: bool = False) -> list[str]:
    """Registered format names (with ``aliases=True`` also their other names, e.g. tflite for litert)."""
    return FORMATS.names(aliases=aliases)


def list_precisions() -> list[str]:
    return PRECISIONS.names()


def get_format(name: str) -> ExportStep:
    """The registered format ``name`` (its step is imported when :meth:`ExportStep.resolve` is called)."""
    return FORMATS.get(name)


def get_precision(name: str) -> ExportStep:
    return PRECISIONS.get(name)


create_format, create_precision = get_format, get_precision  # the earlier names (they create nothing)


register_precision("fp32", "model.onnx, the graph every other artefact is made from (always written)")
register_precision("fp16", "model.fp16.onnx: fp16 body, fp32 input and output", "edgekd.export.onnx_export:export_fp16")
register_precision("int8", "model.int8.onnx: QDQ, calibrated on training images, judged on validation", "edgekd.export.quantize:export_int8")

register_format("onnx", "the ONNX files alone (ONNX Runtime, OpenVINO, TensorRT's trtexec)")
register_format("tensorrt", "model.<precision>.engine built here with TensorRT's Python API", "edgekd.export.tensorrt_build:export_engine")
register_format("litert", "model.tflite, model.fp16.tflite, model.int8.tflite (LiteRT, NHWC input) via litert-torch",
                "edgekd.export.litert_export:export_litert", requires="edgekd.export.litert_export:check_converter", aliases=("tflite",))

# The profile's export.format and export.precision take these words (config.py checks a profile as it loads).
register_key_words("export.format", lambda: list_formats(aliases=True))
register_key_words("export.precision", lambda: list_precisions())
