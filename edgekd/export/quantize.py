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
    """Task metrics of an ONNX model (ONNX Runtime CPU) on preprocessed ``x`` and their ``samples``."""
    from .onnx_export import ort_session

    sess = ort_session(path, threads)
    acc = task.metrics()
    for i in range(0, len(x), batch):
        out = sess.run(None, {"input": x[i : i + batch]})[0]
        acc.update(out, np.stack([np.asarray(task.target(s)) for s in samples[i : i + batch]]))
    return {k: v for k, v in acc.compute().items() if not isinstance(v, list)}
