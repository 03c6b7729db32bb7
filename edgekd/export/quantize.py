"""INT8: ONNX Runtime static quantization (QDQ, per-channel weights) calibrated on the run's data.

The same QDQ file is TensorRT's explicit-quantization input.  For a TensorRT
target activations are symmetric int8 (what TensorRT requires); for a CPU
target they are asymmetric uint8 with int8 weights (U8S8, the fast path of
ONNX Runtime's x86 and ARM kernels).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import EdgekdError


class _Reader:
    """CalibrationDataReader over preprocessed calibration images, one at a time."""

    def __init__(self, x: np.ndarray):
        self.x = x
        self.i = 0

    def get_next(self):
        if self.i >= len(self.x):
            return None
        self.i += 1
        return {"input": self.x[self.i - 1 : self.i]}

    def rewind(self):
        self.i = 0


def quantize_int8(fp32_path, out_path, calib: np.ndarray, symmetric: bool, method: str = "minmax",
                  exclude_last: bool = True) -> Path:
    """Write a QDQ INT8 copy of ``fp32_path`` to ``out_path`` (atomically)."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(_Reader, CalibrationDataReader):
        pass

    out_path = Path(out_path)
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile}
    if method not in methods:
        raise EdgekdError(f"unknown --calib-method {method!r}; use one of: {', '.join(methods)}")
    with tempfile.TemporaryDirectory(dir=out_path.parent) as tmp:
        pre = os.path.join(tmp, "pre.onnx")
        # Shape inference + graph optimisation (BatchNorm folded into Conv) before inserting Q/DQ.
        quant_pre_process(str(fp32_path), pre, skip_symbolic_shape=False)
        nodes_to_exclude = []
        if exclude_last:
            # The head's last conv maps to the output range (metres, logits): keeping it in float costs
            # little and avoids quantising the tensor the metrics are computed on.
            g = onnx.load(pre).graph
            convs = [n.name for n in g.node if n.op_type in ("Conv", "Gemm", "MatMul")]
            nodes_to_exclude = convs[-1:]
        tmp_out = os.path.join(tmp, "int8.onnx")
        quantize_static(
            pre, tmp_out, Reader(calib), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=methods[method], nodes_to_exclude=nodes_to_exclude,
            extra_options={"ActivationSymmetric": symmetric, "WeightSymmetric": True},
        )
        _label_precision(tmp_out, "int8")  # the QDQ copy inherits the fp32 file's metadata: say what it is
        os.replace(tmp_out, out_path)
    return out_path


def _label_precision(path, precision: str) -> None:
    import onnx

    m = onnx.load(str(path))
    props = {p.key: p for p in m.metadata_props}
    if "precision" in props:
        props["precision"].value = precision
    else:
        new = m.metadata_props.add()
        new.key, new.value = "precision", precision
    onnx.save(m, str(path))


def evaluate_onnx(path, task, x: np.ndarray, samples: list, batch: int = 8, threads: int = 0) -> dict:
    """Task metrics of an ONNX model (ONNX Runtime CPU) on preprocessed ``x`` and their ``samples`` (bench/evaluate.py)."""
    from ..bench.evaluate import evaluate
    from .onnx_export import ort_session

    sess = ort_session(path, threads)
    return evaluate(lambda xb: sess.run(None, {"input": xb})[0], task, samples, batch, inputs=x)


def _judge(job, fp32_path: Path, candidate: Path) -> dict:
    """The primary metric of the fp32 and INT8 graphs on the run's validation images, and the drop between them."""
    from .onnx_export import validation_batch

    task = job.task
    x, samples = validation_batch(job.cfg, task, job.options.eval_size or job.cfg["train"]["val_size"])
    m32 = evaluate_onnx(fp32_path, task, x, samples)
    m8 = evaluate_onnx(candidate, task, x, samples)
    key = task.primary_metric
    drop = (m32[key] - m8[key]) if task.higher_is_better else (m8[key] - m32[key])
    return {"eval_images": len(x), "fp32_metrics": m32, "int8_metrics": m8, "primary_metric": key, "drop": drop}


def quantize_and_judge(job) -> dict:
    """Quantize to a candidate file, judge it, and only then let it replace model.int8.onnx."""
    from .onnx_export import failed_name, validation_batch

    o, fp32_path = job.options, job.fp32_path
    symmetric = "tensorrt" in job.cfg["target"]["runtimes"]
    calib, _ = validation_batch(job.cfg, job.task, o.calib_size, split="train")  # calibrate on training data, judge on validation
    int8_path = job.run_dir / "model.int8.onnx"
    candidate = job.run_dir / f".{int8_path.name}.candidate"
    job.log(f"calibrating INT8 ({'symmetric s8s8 for TensorRT' if symmetric else 'u8s8 for CPU'}, {o.calib_method}) on {len(calib)} training images")
    try:
        quantize_int8(fp32_path, candidate, calib, symmetric, o.calib_method)
        j = _judge(job, fp32_path, candidate)
        ok = j["drop"] <= o.max_drop
        final = int8_path if ok else failed_name(int8_path)
        os.replace(candidate, final)
        if ok:
            failed_name(int8_path).unlink(missing_ok=True)
    finally:
        candidate.unlink(missing_ok=True)
    key, m32, m8 = j["primary_metric"], j["fp32_metrics"], j["int8_metrics"]
    job.log(f"wrote {final}; {key} on {j['eval_images']} validation images: fp32 {m32[key]:.4f}, int8 {m8[key]:.4f}, drop {j['drop']:+.4f} "
            f"(max {o.max_drop}) -> {'ok' if ok else f'FAIL ({int8_path.name} left as it was)'}")
    return {"onnx": str(final), "precision": "int8", "symmetric": symmetric, "calib_images": len(calib), "calib_method": o.calib_method,
            **j, "max_drop": o.max_drop, "pass": ok}


def export_int8(job) -> Path:
    """The int8 precision step: model.int8.onnx, kept only when its metric drop is within --max-drop."""
    rec = job.add("int8", quantize_and_judge(job))
    if not rec["pass"]:
        o = job.options
        others = " or ".join(m for m in ("percentile", "entropy", "minmax") if m != o.calib_method)  # never the method in use
        job.failures.append(f"INT8 {rec['primary_metric']} drop {rec['drop']:.4f} exceeds --max-drop {o.max_drop}; "
                            f"calibrate on more images (--calib-size), try --calib-method {others}, or ship fp16")
    return Path(rec["onnx"])
