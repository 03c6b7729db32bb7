"""Student -> ONNX: dynamic batch, inline weights, full checker, its model card (edgekd/card.py), parity against PyTorch;
and the task metrics of an ONNX file under ONNX Runtime (INT8 judging and sensitivity, edgekd fit).

Only the student (encoder + decoder + head activation) enters the graph;
projectors and the teacher never do (docs/architecture.md, "The deployment contract").  The TorchScript exporter
is used: it honours the requested opset (17 for TensorRT 8.6 / JetPack 5 and
later) and writes weights inline, where the dynamo exporter needs opset >= 18,
``onnxscript``, and writes external data by default.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from .. import __version__
from ..card import ModelCard
from ..errors import EdgekdError
from ..fileio import atomic_write_bytes
from .job import write_report


def _onnx_bytes(model, size, opset: int, half: bool = False) -> bytes:
    import torch

    class _Export(torch.nn.Module):
        # fp32 in and out; with half=True the body runs in fp16 (what TensorRT 11's strong typing builds from).
        def __init__(self, m):
            super().__init__()
            self.m = m.half() if half else m

        def forward(self, x):
            return self.m(x.half()).float() if half else self.m(x)

    wrapped = _Export(model).eval()
    dummy = torch.zeros(1, 3, *size)
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(wrapped, dummy, buf, input_names=["input"], output_names=["output"], opset_version=opset,
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, do_constant_folding=True,
                          dynamo=False)
    return buf.getvalue()


def add_metadata(model_proto, meta: dict):
    del model_proto.metadata_props[:]
    for k, v in meta.items():
        p = model_proto.metadata_props.add()
        p.key, p.value = k, str(v)
    model_proto.producer_name = "edgekd"
    model_proto.producer_version = __version__
    return model_proto


def ort_session(path_or_bytes, threads: int = 0):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    if threads:
        so.intra_op_num_threads = threads
    src = path_or_bytes if isinstance(path_or_bytes, (bytes, bytearray)) else str(path_or_bytes)
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


def outputs_and_metrics(path, task, x: np.ndarray, samples: list, batch: int = 8, threads: int = 0) -> tuple[np.ndarray, dict]:
    """The outputs of an ONNX model (ONNX Runtime CPU) on preprocessed ``x`` and the task metrics of their ``samples``."""
    from ..bench.evaluate import evaluate

    sess = ort_session(path, threads)
    outs = []

    def infer(xb):
        outs.append(sess.run(None, {"input": xb})[0])
        return outs[-1]

    metrics = evaluate(infer, task, samples, batch, inputs=x)
    return np.concatenate(outs), metrics


def evaluate_onnx(path, task, x: np.ndarray, samples: list, batch: int = 8, threads: int = 0) -> dict:
    """Task metrics of an ONNX model (ONNX Runtime CPU) on preprocessed ``x`` and their ``samples`` (bench/evaluate.py)."""
    return outputs_and_metrics(path, task, x, samples, batch, threads)[1]


def parity(session, model, x: np.ndarray, atol: float, rtol: float) -> dict:
    """ONNX Runtime vs PyTorch on real inputs: max absolute and relative error, pass/fail."""
    import torch

    with torch.no_grad():
        ref = model(torch.from_numpy(x)).float().numpy()
    return parity_of(session.run(None, {"input": x})[0], ref, atol, rtol)


def parity_of(got: np.ndarray, ref: np.ndarray, atol: float, rtol: float) -> dict:
    """Max absolute and relative error of an exported model's output ``got`` against PyTorch's ``ref``, pass/fail."""
    diff = np.abs(got.astype(np.float64) - ref)
    return {
        "images": int(ref.shape[0]),
        "max_abs_err": float(diff.max()),
        "max_rel_err": float(diff.max() / max(np.abs(ref).max(), 1e-12)),
        "atol": atol, "rtol": rtol,
        "pass": bool(np.all(diff <= atol + rtol * np.abs(ref))),
    }


def onnx_graph(job, precision: str, opset: int) -> bytes:
    """The job's student as a checked ONNX graph with its model card (fp16: an fp16 body with fp32 I/O)."""
    return student_onnx(job.model, ModelCard.of_run(job.task, job.cfg, job.ckpt, precision, job.source), job.cfg.model.student,
                        job.cfg.data.image_size, opset)


def student_onnx(model, card: ModelCard, name: str, size, opset: int) -> bytes:
    """``model`` (a student ``name`` in eval mode) as an ONNX graph of input ``size`` at ``opset``, carrying ``card``
    (its precision: fp16 exports an fp16 body with fp32 I/O), checked by ``onnx.checker``; ``model`` is left as it was."""
    import copy

    import onnx

    model = copy.deepcopy(model)  # the fp16 export converts it in place
    try:
        data = _onnx_bytes(model, size, opset, half=card.precision == "fp16")
    except Exception as e:  # the exporter's own failure, stated plainly
        raise EdgekdError(f"ONNX export of {name} failed at opset {opset}: {str(e).splitlines()[0][:200]}") from None
    proto = onnx.load_from_string(data)
    got_opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    if got_opset != opset:
        raise EdgekdError(f"the exporter wrote opset {got_opset}, not the requested {opset}; pass --opset {got_opset} or upgrade torch")
    add_metadata(proto, card.to_props())
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as e:
        raise EdgekdError(f"the exported graph fails onnx.checker: {str(e).splitlines()[0][:200]}") from None
    return proto.SerializeToString()


def reference(model, precision: str, atol: float, rtol: float):
    """The PyTorch model an exported graph is compared with, and the tolerances (fp16 arithmetic: at least 0.02)."""
    if precision != "fp16":
        return model, atol, rtol
    import copy

    half = copy.deepcopy(model).half()

    def fp16_body(t):  # the same fp16 body with fp32 I/O, as exported
        return half(t.half()).float()

    return fp16_body, max(atol, 2e-2), max(rtol, 2e-2)


def keep_if_passed(out: Path, data: bytes, passed: bool) -> Path:
    """Only a graph that passed replaces the model; a failing one is kept beside it for inspection
    (the caller exits non-zero), so a bad export never destroys a good model."""
    failed = failed_name(out)
    if passed:
        atomic_write_bytes(out, data)
        failed.unlink(missing_ok=True)  # an earlier failed attempt is superseded
        return out
    atomic_write_bytes(failed, data)
    return failed


def export_onnx(job, precision: str = "fp32", out=None) -> dict:
    """Export the job's student to ONNX (fp32, or fp16 body with fp32 I/O), check it against PyTorch, keep it if it passed."""
    opset = job.options.opset or job.cfg.export.opset
    size = job.cfg.data.image_size
    out = Path(out) if out else job.run_dir / {"fp32": "model.onnx", "fp16": "model.fp16.onnx"}[precision]
    data = onnx_graph(job, precision, opset)
    x = job.parity_inputs
    report = {"onnx": str(out), "checkpoint": str(job.ckpt_path), "opset": opset, "precision": precision,
              "bytes": len(data), "input_shape": [-1, 3, *size]}
    ref_model, atol, rtol = reference(job.model, precision, job.options.atol, job.options.rtol)
    try:
        sess = ort_session(data)
    except Exception as e:
        raise EdgekdError(f"ONNX Runtime cannot load the exported graph: {str(e).splitlines()[0][:200]}") from None
    report["parity"] = p = parity(sess, ref_model, x, atol, rtol)
    report["onnx"] = str(keep_if_passed(out, data, p["pass"]))
    job.log(f"wrote {report['onnx']} ({len(data) / 1e6:.1f} MB, opset {opset}, input 1x3x{size[0]}x{size[1]}, dynamic batch); "
            f"parity on {p['images']} validation images: max abs err {p['max_abs_err']:.2e}, max rel err {p['max_rel_err']:.2e} "
            f"-> {'ok' if p['pass'] else f'FAIL ({out.name} left as it was)'}")
    return report


def export_fp32(job) -> Path:
    """model.onnx, checked against PyTorch; a failing graph stops the export (nothing is built from it)."""
    rec = job.add("fp32", export_onnx(job, "fp32"))
    if not rec["parity"]["pass"]:
        # Nothing is built from a graph that failed: model.onnx may be an older, good export.
        write_report(job)
        p, o = rec["parity"], job.options
        raise EdgekdError(f"fp32 parity error {p['max_abs_err']:.2e} exceeds atol {o.atol}/rtol {o.rtol}; {job.run_dir / 'model.onnx'} left "
                          f"as it was, the failing graph kept in {rec['onnx']}")
    return Path(rec["onnx"])


def export_fp16(job) -> Path:
    """The fp16 precision step: model.fp16.onnx, checked against the fp16 PyTorch body."""
    rec = job.add("fp16", export_onnx(job, "fp16"))
    p16, o = rec["parity"], job.options
    job.log(f"fp16 parity tolerance: atol {p16['atol']:g}, rtol {p16['rtol']:g} (fp16 arithmetic; at least 0.02, fp32 is held to "
            f"{o.atol:g}/{o.rtol:g})")
    if not p16["pass"]:
        job.failures.append(f"fp16 parity error {p16['max_abs_err']:.2e} exceeds atol {p16['atol']:g}/rtol {p16['rtol']:g}")
    return Path(rec["onnx"])


def failed_name(path: Path) -> Path:
    """Where an artefact that failed its check is kept: ``model.int8.onnx`` -> ``model.int8.failed.onnx``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.failed{path.suffix}")
