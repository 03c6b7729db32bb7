"""One export: the options, the checkpoint loaded once, and the records of what was written.

The steps of ``edgekd export`` (onnx_export.py, quantize.py, tensorrt_build.py) take an
:class:`ExportJob` and add their records to it; pipeline.py runs them in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..config import RunConfig
from ..errors import EdgekdError
from ..fileio import atomic_write_json
from ..options import option

# The TorchScript exporter writes 7..23 here, but before opset 11 ONNX resizes images differently from
# PyTorch (parity fails: max abs err 0.07 at opset 9/10 on a depth student) and ONNX Runtime's per-channel
# INT8 quantization needs 13; the profile schema allows the same range.
OPSETS = (13, 23)


def _names(text: str) -> tuple:
    """``--exclude-nodes a,b`` -> ("a", "b")."""
    return tuple(n.strip() for n in text.split(",") if n.strip())


@dataclass
class ExportOptions:
    """The checks' and builders' settings; each field's help is its ``edgekd export`` option's."""

    opset: int | None = option(None, "ONNX opset [the profile's, 17].", type=int)  # None: the run's profile's
    atol: float = option(1e-3, "Parity tolerance (absolute) against PyTorch.", lo=0)
    rtol: float = option(1e-3, "Parity tolerance (relative) against PyTorch.", lo=0)
    parity_size: int = option(8, "Validation images for the parity check.", lo=1)
    calib_size: int = option(64, "INT8: training images to calibrate on.", lo=1)
    calib_method: str = option("percentile", "Activation ranges: percentile (99.999%) kept the metric best in benchmarks/export/export.md.",
                               choices=("minmax", "entropy", "percentile"))
    max_drop: float = option(0.01, "INT8: largest allowed drop of the primary metric (absolute).")
    eval_size: int | None = option(None, "INT8: validation images to judge the drop on [the run's val size].", type=int, lo=1)
    sensitivity: bool = option(False, "INT8: measure the error each node adds quantized alone (a table in the log and export.json); "
                                      "always done when the drop exceeds --max-drop.")  # even when the drop is within budget
    sensitivity_size: int = option(16, "INT8: calibration images the sensitivity is measured on.", lo=1)
    sensitivity_units: int = option(64, "INT8: most units the sensitivity measures; a graph with more quantizable nodes is measured "
                                        "block by block.", lo=1)  # int8_sensitivity.py groups nodes by block above it
    max_float_nodes: int = option(10, "INT8: when the drop exceeds --max-drop, keep up to this many of the most sensitive nodes in float "
                                      "until it does not (0: no fallback).", lo=0)  # int8_fallback.py
    exclude_nodes: tuple = option((), "INT8: nodes to keep in float (names as in the sensitivity table).", metavar="NAME,...", parse=_names)
    max_batch: int = option(8, "TensorRT: largest batch of the optimisation profile.", lo=1)

    def check(self) -> None:
        """Refuse what cannot be exported with, before the checkpoint is read."""
        if self.opset is not None and not OPSETS[0] <= self.opset <= OPSETS[1]:
            raise EdgekdError(f"--opset {self.opset} is not supported: use {OPSETS[0]} to {OPSETS[1]} (older opsets resize images unlike "
                              "PyTorch and cannot hold per-channel INT8)")
        for name, value in (("--parity-size", self.parity_size), ("--calib-size", self.calib_size), ("--max-batch", self.max_batch),
                            ("--eval-size", self.eval_size), ("--sensitivity-size", self.sensitivity_size),
                            ("--sensitivity-units", self.sensitivity_units)):
            if value is not None and value < 1:
                raise EdgekdError(f"{name} {value}: use at least 1")
        if self.max_float_nodes < 0:
            raise EdgekdError(f"--max-float-nodes {self.max_float_nodes}: use 0 (no fallback) or more")


@dataclass
class ExportJob:
    """A loaded checkpoint and what its export has written so far."""

    ckpt_path: Path
    run_dir: Path  # where the artefacts and export.json go
    model: Any  # the student in eval mode (torch)
    task: Any
    cfg: RunConfig  # the run's (from the checkpoint; export --target replaces its target)
    ckpt: dict
    options: ExportOptions = field(default_factory=ExportOptions)
    log: Callable[[str], Any] = print
    report: dict = field(default_factory=dict)  # this invocation's report (export.json's top level)
    artefacts: dict = field(default_factory=dict)  # file name -> record, for export.json's "artefacts"
    failures: list = field(default_factory=list)  # failed checks, one clause each
    source: dict = field(default_factory=dict)  # the checkpoint's name, step and sha256 (export/source.py)
    _parity_inputs: Any = None

    @property
    def parity_inputs(self):
        """The validation images every ONNX file is checked against PyTorch on (rendered once)."""
        if self._parity_inputs is None:
            from ..bench.evaluate import validation_batch

            self._parity_inputs = validation_batch(self.cfg, self.task, self.options.parity_size)[0]
        return self._parity_inputs

    @property
    def fp32_path(self) -> Path:
        return Path(self.report["fp32"]["onnx"])

    def add(self, key: str, record: dict, file_key: str = "onnx") -> dict:
        """Keep ``record`` as this report's ``key`` and as the record of the file it names."""
        from ..bench.provenance import sha256_file

        self.report[key] = record
        written = Path(record[file_key])
        source = {"checkpoint": str(self.ckpt_path), "checkpoint_step": self.ckpt.get("step"),
                  "checkpoint_sha256": self.source.get("checkpoint_sha256"),
                  "sha256": sha256_file(written) if written.exists() else None}  # bench/provenance.py matches files by it
        self.artefacts[written.name] = {**record, **source}
        return record


def load_job(run, options: ExportOptions, expect_task: str | None = None, log=print, allow_unfinished: bool = False) -> ExportJob:
    """Read the checkpoint of ``run`` (a run directory or a .pt file; which one: models/run.py) once, for every step."""
    from ..models.run import choose_checkpoint, describe_checkpoint, load_student
    from .source import checkpoint_source

    ckpt_path, run_dir = choose_checkpoint(run, allow_unfinished, log)
    model, task, cfg, ckpt = load_student(ckpt_path)
    if expect_task and task.name != expect_task:
        raise EdgekdError(f"{ckpt_path} was trained for {task.name}, not {expect_task}; export a {expect_task} run or drop --task")
    log(describe_checkpoint(ckpt_path, ckpt, task.primary_metric))
    return ExportJob(ckpt_path, run_dir, model, task, cfg, ckpt, options, log, source=checkpoint_source(ckpt_path, ckpt))


def write_report(job: ExportJob) -> None:
    """export.json: this invocation's report, plus one record per artefact still on disk (earlier invocations' kept)."""
    import json

    path = job.run_dir / "export.json"
    try:
        old = json.loads(path.read_text()).get("artefacts") or {} if path.exists() else {}
    except (OSError, ValueError, AttributeError):
        old = {}  # an unreadable record is replaced, not trusted
    kept = {name: rec for name, rec in old.items() if (job.run_dir / name).exists() and name not in job.artefacts}
    atomic_write_json(path, {**job.report, "artefacts": {**kept, **job.artefacts}})
