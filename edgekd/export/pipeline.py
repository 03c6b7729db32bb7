"""``edgekd export`` in order: load once, fp32 ONNX, the precision's step, the format's step, export.json.

Each artefact replaces its file only after its check passed (a failing one is kept as
``*.failed.onnx``); export.json keeps one record per artefact in ``artefacts`` across invocations,
and this invocation's report at the top level.
"""

from __future__ import annotations

from ..errors import EdgekdError
from .formats import create_format, create_precision
from .job import ExportJob, ExportOptions, load_job, write_report


def run_export(run, fmt=None, precision=None, opset=None, atol=1e-3, rtol=1e-3, parity_size=8, calib_size=64,
               calib_method="percentile", max_drop=0.01, eval_size=None, max_batch=8, expect_task=None, log=print,
               allow_unfinished=False, target=None, sensitivity=False, sensitivity_size=16, sensitivity_units=64,
               max_float_nodes=10, exclude_nodes=()) -> dict:
    """Export ``run`` (a run directory or checkpoint) and return the report (also written as export.json).

    ``fmt`` and ``precision`` default to the run's profile's (``export.format``, ``export.precision``);
    an unfinished run's checkpoint is chosen as export/source.py says (``allow_unfinished``: take its last.pt);
    ``target`` (a name or TOML) exports for another target than the run's: its metadata and INT8 scheme.
    INT8: ``sensitivity`` measures each node's error (always when the drop exceeds ``max_drop``), and up to
    ``max_float_nodes`` of the most sensitive nodes are kept in float until the drop is within ``max_drop``;
    ``exclude_nodes`` are kept in float from the start.
    """
    options = ExportOptions(opset, atol, rtol, parity_size, calib_size, calib_method, max_drop, eval_size, max_batch, sensitivity,
                            sensitivity_size, sensitivity_units, max_float_nodes, tuple(exclude_nodes))
    options.check()
    if fmt:
        create_format(fmt).check_installed()  # before the checkpoint is read
    job = load_job(run, options, expect_task, log, allow_unfinished)
    if target:
        from ..config import load_target, section_from_dict

        made_for, job.cfg.target = job.cfg.target.name, section_from_dict("target", load_target(target))
        if made_for != job.cfg.target.name:
            log(f"note: exporting for {job.cfg.target.name} (the run was trained for {made_for})")
    return export(job, fmt, precision)


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
