"""OpenVINO on the CPU (``--backend openvino``): Intel's runtime for x86 edge boxes, reading the same ONNX and INT8 QDQ files.

``pip install openvino`` (or ``edgekd[openvino]``).  The ONNX frontend turns QDQ pairs into FakeQuantize
nodes and runs them as int8 kernels, fusing the activations that ONNX Runtime runs as separate re-quantising
kernels (EfficientNet's SiLU and squeeze-excitation: see benchmarks/export/export.md).
"""

from __future__ import annotations

import time

from ...errors import EdgekdError, MissingDependencyError
from .base import BaseRunner, installed, register_backend

_MISSING = "OpenVINO is not installed; pip install openvino (or edgekd[openvino]), or use --backend ort-cpu"


@register_backend("openvino")
class OpenVINORunner(BaseRunner):
    """An OpenVINO compiled model on the CPU plugin, latency hint, f32 inference precision for fp32 files."""

    model_kind = "onnx"
    runtime = "openvino"

    @classmethod
    def unavailable(cls, **_) -> str | None:
        return None if installed("openvino") else _MISSING

    def open_impl(self):
        try:
            import openvino as ov
        except ImportError:
            raise MissingDependencyError(_MISSING) from None
        self.ov = ov
        core = ov.Core()
        try:
            self.model = core.read_model(str(self.path))
        except Exception as e:
            raise EdgekdError(f"{self.path} is not a valid ONNX model for OpenVINO ({str(e).splitlines()[0][:160]}); "
                              "give the model.onnx written by edgekd export") from None
        # f32 keeps fp32 files fp32 (on CPUs with bf16 units OpenVINO would otherwise pick bf16, changing the
        # accuracy being checked); INT8 comes from the file's QDQ nodes, not from this hint.
        self.config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": int(self.threads or 0),
                       "INFERENCE_PRECISION_HINT": "f32"}
        self.core = core
        try:
            self.compiled = core.compile_model(self.model, "CPU", self.config)
        except Exception as e:
            raise EdgekdError(f"OpenVINO cannot compile {self.path}: {str(e).splitlines()[0][:200]}") from None
        self.request = self.compiled.create_infer_request()

    def close_impl(self):
        self.request = self.compiled = None

    def describe(self) -> dict:
        return {"backend": self.name, "runtime": f"openvino {self.ov.get_version().split('-')[0]}", "providers": ["CPU"],
                "threads": int(self.compiled.get_property("INFERENCE_NUM_THREADS")) or self.threads}

    def metadata(self) -> dict:
        """The ONNX ``metadata_props``, which the ONNX frontend keeps in rt_info["framework"]."""
        if not self.model.has_rt_info(["framework"]):
            return {}
        keys = self.model.get_rt_info()["framework"]
        return {k: self.model.get_rt_info(["framework", k]).astype(str) for k in keys}

    def input_shape(self) -> list:
        ps = self.model.inputs[0].get_partial_shape()
        return [d.get_length() if d.is_static else None for d in ps]

    def placement(self, x, runs: int = 3) -> dict:
        """Ops per runtime precision (and their share of execution time), from a second compile with PERF_COUNT."""
        from ..placement import openvino_placement

        config = {**self.config, "PERF_COUNT": True}
        compiled = self.core.compile_model(self.model, "CPU", config)
        request = compiled.create_infer_request()
        for _ in range(runs):
            request.infer({0: x})
        ops = []
        for op in compiled.get_runtime_model().get_ordered_ops():
            info = op.get_rt_info()
            ops.append((info["layerType"].astype(str), info["runtimePrecision"].astype(str), info["execTimeMcs"].astype(str)))
        return openvino_placement(ops, "CPU")

    def infer(self, x):
        t0 = time.perf_counter()
        self.request.infer({0: x})
        out = self.request.get_output_tensor(0).data.copy()
        return out, {"compute": time.perf_counter() - t0}
