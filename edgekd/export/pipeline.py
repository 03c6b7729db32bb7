"""``edgekd export`` in order: load once, fp32 ONNX, the precision's step, the format's step, export.json.

Each artefact replaces its file only after its check passed (a failing one is kept as
``*.failed.onnx``); export.json keeps one record per artefact in ``artefacts`` across invocations,
and this invocation's report at the top level.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

from ..errors import EdgekdError
from ..options import option
from .formats import create_format, create_precision
from .job import ExportJob, ExportOptions, load_job, write_report


def _formats() -> list:
    from .formats import list_formats

    return list_formats(aliases=True)


def _precisions() -> list:
    from .formats import list_precisions

    return list_precisions()


@dataclass
class ExportRequest:
    """What ``edgekd export`` was asked: the run, what to write for which target, and the checks' options."""

    run: str | Path
    fmt: str | None = option(None, "What the device loads [the run's profile's: onnx]; litert (alias tflite) writes the three .tflite files.",
                             flag="--format", choices=_formats)  # None: the run's profile's (export.format)
    precision: str | None = option(None, "What the target runs; fp32 model.onnx is always written too [the run's profile's: jetson fp16, "
                                         "mobile int8, server fp16].", choices=_precisions)  # None: export.precision
    options: ExportOptions = field(default_factory=ExportOptions)
    expect_task: str | None = option(None, "Refuse a checkpoint trained for another task (a guard for pipelines).", flag="--task")
    target: str | None = option(None, "Export for this target (name or TOML) instead of the run's: its metadata, and its INT8 scheme "
                                      "(u8s8 for a CPU, s8s8 for TensorRT) [the run's].")
    allow_unfinished: bool = option(False, "Export the last.pt of a run that stopped before its first evaluation (refused otherwise; an "
                                           "unfinished run with a best.pt exports that).")


def run_export(run, fmt=None, precision=None, log=print, **kw) -> dict:
    """``export_run`` with the request's and :class:`ExportOptions`' fields by name (a script's call)."""
    names = {f.name for f in fields(ExportRequest)}
    request = ExportRequest(run, fmt, precision, ExportOptions(**{k: v for k, v in kw.items() if k not in names}),
                            **{k: v for k, v in kw.items() if k in names})
    return export_run(request, log)


def export_run(r: ExportRequest, log=print) -> dict:
    """Export ``r.run`` (a run directory or checkpoint) and return the report (also written as export.json).

    ``fmt`` and ``precision`` default to the run's profile's (``export.format``, ``export.precision``);
    an unfinished run's checkpoint is chosen as models/run.py says (``allow_unfinished``: take its last.pt);
    ``target`` (a name or TOML) exports for another target than the run's: its metadata and INT8 scheme.
    INT8: ``sensitivity`` measures each node's error (always when the drop exceeds ``max_drop``), and up to
    ``max_float_nodes`` of the most sensitive nodes are kept in float until the drop is within ``max_drop``;
    ``exclude_nodes`` are kept in float from the start.
    """
    options = r.options
    options.exclude_nodes = tuple(options.exclude_nodes)
    options.check()
    if r.fmt:
        create_format(r.fmt).check_installed()  # before the checkpoint is read
    job = load_job(r.run, options, r.expect_task, log, r.allow_unfinished)
    if r.target:
        from ..config import target_config

        made_for, job.cfg.target = job.cfg.target.name, target_config(r.target)
        if made_for != job.cfg.target.name:
            log(f"note: exporting for {job.cfg.target.name} (the run was trained for {made_for})")
    return export(job, r.fmt, r.precision)


def export(job: ExportJob, fmt: str | None = None, precision: str | None = None) -> dict:
    """Run the steps of ``fmt`` and ``precision`` (registered in formats.py) on a loaded job."""
    from .onnx_export import export_fp32

    fmt = fmt or _profile_format(job)
    precision = precision or job.cfg.export.precision
    fmt_entry = create_format(fmt)
    fmt_entry.check_installed()  # a missing converter is said before anything is written
    fmt, format_step, precision_step = fmt_entry.name, fmt_entry.resolve(), create_precision(precision).resolve()
    # export.json says only what was written: the format is "onnx" until the format's builder has built its file.
    job.report.update(run=str(job.run_dir), format="onnx", precision=precision, **job.source)
    if job.options.exclude_nodes:
        check_node_names(job)  # before any file is written (docs/errors.md)
    source = export_fp32(job)  # raises (after writing export.json) when the fp32 graph fails: nothing is built from it
    if precision_step is not None:
        source = precision_step(job)
    if format_step is not None and not job.failures:
        job.report["not_built"] = {"format": fmt, "why": "the build did not finish"}
        write_report(job)  # the ONNX part is done whatever the format's builder says
        try:
            format_step(job, source)
        except EdgekdError as e:
            job.report["not_built"]["why"] = str(e)
            write_report(job)
            raise
        del job.report["not_built"]
        job.report["format"] = fmt
    write_report(job)
    if job.failures:
        raise EdgekdError("; ".join(job.failures) + f" (the checked files are left as they were; failing ones kept as *.failed.* in {job.run_dir})")
    return job.report


def _profile_format(job: ExportJob) -> str:
    """The profile's ``export.format``; ONNX with one line when its converter is not installed here (the mobile
    profile deploys LiteRT, whose converter is an extra): a format the user named is refused instead."""
    from ..errors import MissingDependencyError

    fmt = job.cfg.export.format
    try:
        create_format(fmt).check_installed()
    except MissingDependencyError as e:
        job.log(f"note: the profile deploys {fmt}, but {e}; writing the ONNX files only")
        return "onnx"
    return fmt


def check_node_names(job: ExportJob) -> None:
    """Refuse ``--exclude-nodes`` names the student's graph does not have, before anything is written."""
    import onnx

    from .onnx_export import onnx_graph

    graph = onnx.load_from_string(onnx_graph(job, "fp32", job.options.opset or job.cfg.export.opset)).graph
    names = [n.name for n in graph.node]
    unknown = [n for n in job.options.exclude_nodes if n not in set(names)]
    if unknown:
        convs = [n.name for n in graph.node if n.op_type == "Conv"][:3]
        raise EdgekdError(f"--exclude-nodes: {', '.join(map(repr, unknown))} is not a node of {job.cfg.model.student}'s graph "
                          f"(e.g. {', '.join(convs)}); --sensitivity lists the quantizable ones with their error")
