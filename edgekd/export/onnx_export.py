"""Student -> ONNX: dynamic batch, inline weights, full checker, metadata, parity against PyTorch.

Only the student (encoder + decoder + head activation) enters the graph;
projectors and the teacher never do (DESIGN.md §5).  The TorchScript exporter
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
from ..data.transforms import MEAN, STD, normalise
from ..errors import EdgekdError
from ..fileio import atomic_write_bytes, load_checkpoint


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
    """(student in eval mode, task, config, checkpoint) from an edgekd checkpoint."""
    from ..models.student import student_from_checkpoint

    ckpt = load_checkpoint(ckpt_path)
    model, task, cfg = student_from_checkpoint(ckpt, str(ckpt_path))
    return model.eval(), task, cfg, ckpt


def validation_batch(cfg: dict, task, n: int, split: str = "val") -> tuple[np.ndarray, list]:
    """``n`` preprocessed inputs (N, 3, H, W) and their samples from the run's own data."""
    from ..data import open_dataset
    from ..data.transforms import resize_sample

    size = cfg["data"]["image_size"]
    ds = open_dataset(cfg["data"]["data"], split, size, min(n, cfg["train"]["val_size"]) if split == "val" else n,
                      cfg["data"]["seed"], cfg["data"]["data_format"], task=task.name, direction=cfg["data"]["direction"])
    samples = [resize_sample(ds[i], *size) for i in range(min(n, len(ds)))]
    x = np.stack([normalise(task.input_image(s)) for s in samples]).astype(np.float32)
    return x, samples


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


def build_metadata(task, cfg: dict, ckpt: dict, precision: str) -> dict:
    """Everything a device needs to run and judge the model, as ONNX ``metadata_props`` (strings)."""
    meta = task.metadata()
    ev = {"data": cfg["data"]["data"], "data_format": cfg["data"]["data_format"], "direction": cfg["data"]["direction"], "split": "val",
          "n": cfg["train"]["val_size"], "seed": cfg["data"]["seed"]}
    return {
        "edgekd_version": __version__,
        "task": task.name,
        "task_args": json.dumps(ckpt.get("task_args", {})),
        "input_name": "input",
        "input_shape": json.dumps([-1, 3, *cfg["data"]["image_size"]]),
        "layout": "NCHW",
        "normalisation": json.dumps({"mean": MEAN, "std": STD, "scale": 1 / 255}),
        "output": meta.get("output", ""),
        "output_range": json.dumps(meta["output_range"]) if meta.get("output_range") else "",
        "class_names": json.dumps(meta.get("class_names", [])),
        "student": cfg["model"]["student"],
        # How the model was distilled (docs/distillation.md): the feature taps, the initialisation, the teacher.
        "distillation": json.dumps({"student_tap": cfg["model"].get("student_tap", "stage"),
                                    "student_weights": cfg["model"].get("student_weights", "none"),
                                    "teacher": cfg["distill"].get("teacher"), "teacher_tap": cfg["distill"].get("teacher_tap", "raw"),
                                    "method": cfg["distill"].get("method"), "projection": cfg["distill"].get("projection"),
                                    "spectral": cfg["distill"].get("spectral")}),
        "profile": cfg["profile"]["name"],
        "target": cfg["target"]["name"],
        "precision": precision,
        "primary_metric": task.primary_metric,
        "reference_metrics": json.dumps({k: v for k, v in (ckpt.get("metrics") or {}).items() if not isinstance(v, list)}),
        "reference_eval": json.dumps(ev),
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
    got = session.run(None, {"input": x})[0]
    diff = np.abs(got.astype(np.float64) - ref)
    return {
        "images": int(x.shape[0]),
        "max_abs_err": float(diff.max()),
        "max_rel_err": float(diff.max() / max(np.abs(ref).max(), 1e-12)),
        "atol": atol, "rtol": rtol,
        "pass": bool(np.all(diff <= atol + rtol * np.abs(ref))),
    }


def export_onnx(run, out=None, opset=None, precision="fp32", atol=1e-3, rtol=1e-3, parity_size=8, log=print,
                loaded=None, parity_inputs=None) -> dict:
    """Export a run's student to ONNX (fp32, or fp16 body with fp32 I/O) and check it.

    ``loaded`` = :func:`load_student`'s result and ``parity_inputs`` = :func:`validation_batch`'s
    inputs let a caller that exports several precisions read the checkpoint and render the data once.
    """
    import copy

    import onnx

    ckpt_path, run_dir = resolve_run(run)
    model, task, cfg, ckpt = loaded or load_student(ckpt_path)
    model = copy.deepcopy(model)  # the fp16 export converts it in place
    opset = opset or cfg["export"]["opset"]
    size = cfg["data"]["image_size"]
    name = {"fp32": "model.onnx", "fp16": "model.fp16.onnx"}[precision]
    out = Path(out) if out else run_dir / name
    try:
        data = _onnx_bytes(model, size, opset, half=precision == "fp16")
    except Exception as e:  # the exporter's own failure, stated plainly
        raise EdgekdError(f"ONNX export of {cfg['model']['student']} failed at opset {opset}: {str(e).splitlines()[0][:200]}") from None
    proto = onnx.load_from_string(data)
    got_opset = next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))
    if got_opset != opset:
        raise EdgekdError(f"the exporter wrote opset {got_opset}, not the requested {opset}; pass --opset {got_opset} or upgrade torch")
    add_metadata(proto, build_metadata(task, cfg, ckpt, precision))
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as e:
        raise EdgekdError(f"the exported graph fails onnx.checker: {str(e).splitlines()[0][:200]}") from None
    data = proto.SerializeToString()
    x = parity_inputs if parity_inputs is not None else validation_batch(cfg, task, parity_size)[0]
    report = {"onnx": str(out), "checkpoint": str(ckpt_path), "opset": opset, "precision": precision,
              "bytes": len(data), "input_shape": [-1, 3, *size]}
    if precision == "fp16":
        model = model.half()

        class _Ref:  # the same fp16 body with fp32 I/O, as exported
            def __call__(self, t):
                return model(t.half()).float()

        ref_model = _Ref()
        atol, rtol = max(atol, 2e-2), max(rtol, 2e-2)
    else:
        ref_model = model
    try:
        sess = ort_session(data)
    except Exception as e:
        raise EdgekdError(f"ONNX Runtime cannot load the exported graph: {str(e).splitlines()[0][:200]}") from None
    report["parity"] = p = parity(sess, ref_model, x, atol, rtol)
    # Only a graph that passed replaces the model; a failing one is kept beside it for inspection
    # (the caller exits non-zero), so a bad export never destroys a good model.
    failed = failed_name(out)
    if p["pass"]:
        atomic_write_bytes(out, data)
        failed.unlink(missing_ok=True)  # an earlier failed attempt is superseded
    else:
        atomic_write_bytes(failed, data)
        report["onnx"] = str(failed)
    log(f"wrote {report['onnx']} ({len(data) / 1e6:.1f} MB, opset {opset}, input 1x3x{size[0]}x{size[1]}, dynamic batch); "
        f"parity on {p['images']} validation images: max abs err {p['max_abs_err']:.2e}, max rel err {p['max_rel_err']:.2e} "
        f"-> {'ok' if p['pass'] else f'FAIL ({out.name} left as it was)'}")
    return report


def failed_name(path: Path) -> Path:
    """Where an artefact that failed its check is kept: ``model.int8.onnx`` -> ``model.int8.failed.onnx``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.failed{path.suffix}")
