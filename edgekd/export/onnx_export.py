"""Student -> ONNX: dynamic batch, inline weights, full checker, metadata, parity against PyTorch.

Only the student (encoder + decoder + head activation) enters the graph;
projectors and the teacher never do (docs/architecture.md, "The deployment contract").  The TorchScript exporter
is used: it honours the requested opset (17 for TensorRT 8.6 / JetPack 5 and
later) and writes weights inline, where the dynamo exporter needs opset >= 18,
``onnxscript``, and writes external data by default.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np

from .. import __version__
from ..config import RunConfig
from ..data.transforms import MEAN, STD
from ..errors import EdgekdError
from ..fileio import atomic_write_bytes, load_checkpoint
from .job import write_report


def resolve_run(path) -> tuple[Path, Path]:
    """A run directory or a checkpoint file -> (checkpoint, directory to write into)."""
    p = Path(path).expanduser()
    if p.is_dir():
        for name in ("best.pt", "last.pt"):
            if (p / name).exists():
                return p / name, p
        raise EdgekdError(f"{p} holds no best.pt or last.pt; give a run directory written by edgekd distill")
    if not p.exists():
        raise EdgekdError(f"{p} does not exist; give a run directory (runs/<name>) or a checkpoint .pt file")
    return p, p.parent


def load_student(ckpt_path: Path):
    """(student in eval mode, task, the run's :class:`~edgekd.config.RunConfig`, checkpoint) from an edgekd checkpoint."""
    from ..models.student import student_from_checkpoint

    ckpt = load_checkpoint(ckpt_path)
    model, task, cfg = student_from_checkpoint(ckpt, str(ckpt_path))
    return model.eval(), task, cfg, ckpt


def validation_batch(cfg: RunConfig | dict, task, n: int, split: str = "val") -> tuple[np.ndarray, list]:
    """``n`` preprocessed inputs (N, 3, H, W) and their samples from the run's own data (bench/evaluate.py)."""
    from ..bench.evaluate import input_batch, run_samples

    samples = list(run_samples(cfg, task, n, split))
    return input_batch(task, samples), samples


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


def build_metadata(task, cfg: RunConfig | dict, ckpt: dict, precision: str, source: dict | None = None) -> dict:
    """Everything a device needs to run and judge the model, as ONNX ``metadata_props`` (strings); ``source``:
    the checkpoint's name, step and sha256 (export/source.py), which tell a stale file (bench/provenance.py)."""
    cfg = RunConfig.coerce(cfg)
    meta, d, m, dc = task.metadata(), cfg.data, cfg.model, cfg.distill
    ev = {"data": d.data, "data_format": d.data_format, "direction": d.direction, "depth_scale": d.depth_scale, "split": "val",
          "n": cfg.train.val_size, "seed": d.seed}
    return {
        "edgekd_version": __version__,
        "task": task.name,
        "task_args": json.dumps(ckpt.get("task_args", {})),
        "input_name": "input",
        "input_shape": json.dumps([-1, 3, *d.image_size]),
        "layout": "NCHW",
        "normalisation": json.dumps({"mean": MEAN, "std": STD, "scale": 1 / 255}),
        "output": meta.get("output", ""),
        "output_range": json.dumps(meta["output_range"]) if meta.get("output_range") else "",
        "class_names": json.dumps(meta.get("class_names", [])),
        "student": m.student,
        # How the model was distilled (docs/distillation.md): the feature taps, the initialisation, the teacher.
        "distillation": json.dumps({"student_tap": m.student_tap, "student_weights": m.student_weights, "teacher": dc.teacher,
                                    "teacher_tap": dc.teacher_tap, "method": dc.method, "projection": dc.projection,
                                    "spectral": dc.spectral}),
        "profile": cfg.profile.name,
        "target": cfg.target.name,
        "precision": precision,
        "primary_metric": task.primary_metric,
        "reference_metrics": json.dumps({k: v for k, v in (ckpt.get("metrics") or {}).items() if not isinstance(v, list)}),
        "reference_eval": json.dumps(ev),
        **{k: "" if v is None else str(v) for k, v in (source or {}).items()},
    }


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
    """The student as a checked ONNX graph with its metadata (fp16: an fp16 body with fp32 I/O)."""
    import copy

    import onnx

    model = copy.deepcopy(job.model)  # the fp16 export converts it in place
    try:
        data = _onnx_bytes(model, job.cfg.data.image_size, opset, half=precision == "fp16")
    except Exception as e:  # the exporter's own failure, stated plainly
        raise EdgekdError(f"ONNX export of {job.cfg.model.student} failed at opset {opset}: {str(e).splitlines()[0][:200]}") from None
    proto = onnx.load_from_string(data)
    got_opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    if got_opset != opset:
        raise EdgekdError(f"the exporter wrote opset {got_opset}, not the requested {opset}; pass --opset {got_opset} or upgrade torch")
    add_metadata(proto, build_metadata(job.task, job.cfg, job.ckpt, precision, job.source))
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
