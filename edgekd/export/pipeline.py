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
               calib_method="percentile", max_drop=0.01, eval_size=None, max_batch=8, expect_task=None, log=print, sensitivity=False,
               sensitivity_size=16, sensitivity_units=64, max_float_nodes=10, exclude_nodes=()) -> dict:
    """Export ``run`` (a run directory or checkpoint) and return the report (also written as export.json).

    ``fmt`` and ``precision`` default to the run's profile's (``export.format``, ``export.precision``).
    INT8: ``sensitivity`` measures each node's error (always when the drop exceeds ``max_drop``), and up to
    ``max_float_nodes`` of the most sensitive nodes are kept in float until the drop is within ``max_drop``;
    ``exclude_nodes`` are kept in float from the start.
    """
    options = ExportOptions(opset, atol, rtol, parity_size, calib_size, calib_method, max_drop, eval_size, max_batch, sensitivity,
                            sensitivity_size, sensitivity_units, max_float_nodes, tuple(exclude_nodes))
    options.check()
    return export(load_job(run, options, expect_task, log), fmt, precision)


def export(job: ExportJob, fmt: str | None = None, precision: str | None = None) -> dict:
    """Run the steps of ``fmt`` and ``precision`` (registered in formats.py) on a loaded job."""
    from .onnx_export import export_fp32

    fmt = fmt or job.cfg["export"].get("format", "onnx")
    precision = precision or job.cfg["export"]["precision"]
    format_step, precision_step = create_format(fmt).resolve(), create_precision(precision).resolve()
    job.report.update(run=str(job.run_dir), format=fmt, precision=precision)
    if job.options.exclude_nodes:
        check_node_names(job)  # before any file is written (docs/errors.md)
    source = export_fp32(job)  # raises (after writing export.json) when the fp32 graph fails: nothing is built from it
    if precision_step is not None:
        source = precision_step(job)
    if format_step is not None and not job.failures:
        write_report(job)  # the ONNX part is done whatever the format's builder says
        format_step(job, source)
    write_report(job)
    if job.failures:
        raise EdgekdError("; ".join(job.failures) + f" (the checked files are left as they were; failing ones kept as *.failed.* in {job.run_dir})")
    return job.report


def check_node_names(job: ExportJob) -> None:
    """Refuse ``--exclude-nodes`` names the student's graph does not have, before anything is written."""
    import onnx

    from .onnx_export import onnx_graph

    graph = onnx.load_from_string(onnx_graph(job, "fp32", job.options.opset or job.cfg["export"]["opset"])).graph
    names = [n.name for n in graph.node]
    unknown = [n for n in job.options.exclude_nodes if n not in set(names)]
    if unknown:
        convs = [n.name for n in graph.node if n.op_type == "Conv"][:3]
        raise EdgekdError(f"--exclude-nodes: {', '.join(map(repr, unknown))} is not a node of {job.cfg['model']['student']}'s graph "
                          f"(e.g. {', '.join(convs)}); --sensitivity lists the quantizable ones with their error")
