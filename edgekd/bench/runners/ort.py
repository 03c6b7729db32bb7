"""ONNX Runtime on one execution provider: ort-cpu (alias onnxruntime), ort-cuda, ort-tensorrt, ort-xnnpack."""

from __future__ import annotations

import time

from ...errors import EdgekdError, MissingDependencyError
from .base import BaseRunner, InputSpec, register_backend

# ONNX Runtime's element types and numpy's names for them (generic_input feeds these)
_NUMPY_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64", "tensor(uint8)": "uint8",
                "tensor(int8)": "int8", "tensor(int32)": "int32", "tensor(int64)": "int64", "tensor(bool)": "bool"}


def _import_ort():
    try:
        import onnxruntime as ort
    except ImportError:
        raise MissingDependencyError("onnxruntime is not installed; pip install onnxruntime (or onnxruntime-gpu)") from None
    return ort


class OrtRunner(BaseRunner):
    """An ONNX Runtime session on one execution provider (with CPU fallback for unsupported nodes)."""

    model_kind = "onnx"
    runtime = "onnxruntime"

    @classmethod
    def unavailable(cls, provider: str = "CPUExecutionProvider", **_) -> str | None:
        try:
            import onnxruntime as ort
        except ImportError:
            return "onnxruntime is not installed; pip install onnxruntime (or onnxruntime-gpu)"
        available = ort.get_available_providers()
        if provider not in available:
            return (f"backend {cls.name} is not available on this machine (onnxruntime {ort.__version__} has: "
                    f"{', '.join(p.replace('ExecutionProvider', '') for p in available)}); use --backend ort-cpu or install the runtime that has it")
        return None

    def _providers(self, so):
        provider, threads = self.options["provider"], self.threads
        if provider == "XnnpackExecutionProvider":
            # XNNPACK owns its thread pool; ORT's intra-op pool is kept at one thread (ORT's guidance).
            so.intra_op_num_threads = 1
            return [(provider, {"intra_op_num_threads": threads}), "CPUExecutionProvider"]
        so.intra_op_num_threads = threads
        providers = [provider]
        if provider == "TensorrtExecutionProvider":
            # fp16 kernels where the graph allows, and a cache so that the engine is built once per device.
            cache = str(self.path.parent / ".ort-trt-cache")
            providers = [(provider, {"trt_fp16_enable": True, "trt_engine_cache_enable": True,
                                     "trt_engine_cache_path": cache, "trt_timing_cache_enable": True}), "CUDAExecutionProvider"]
        if provider != "CPUExecutionProvider":
            providers.append("CPUExecutionProvider")
        return providers

    def open_impl(self):
        ort = _import_ort()
        reason = self.unavailable(**self.options)
        if reason:
            raise MissingDependencyError(reason)
        self.ort = ort
        self.session = self._session()
        self.input = self.session.get_inputs()[0]
        self.on_gpu = self.options["provider"] in ("CUDAExecutionProvider", "TensorrtExecutionProvider")

    def _session(self, profile_prefix: str | None = None):
        ort = self.ort
        so = ort.SessionOptions()
        so.log_severity_level = 3
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if profile_prefix:
            so.enable_profiling = True
            so.profile_file_prefix = profile_prefix
        providers = self._providers(so)
        try:
            return ort.InferenceSession(str(self.path), so, providers=providers)
        except Exception as e:
            if type(e).__name__ == "InvalidProtobuf":
                raise EdgekdError(f"{self.path} is not a valid ONNX model (onnxruntime cannot parse it); give the model.onnx written by edgekd export") from None
            raise EdgekdError(f"onnxruntime cannot load {self.path}: {str(e).splitlines()[0][:200]}") from None

    def placement(self, x, runs: int = 3) -> dict:
        """Nodes and kernel time per execution provider, from ORT's profiler on a separate session (``runs`` runs)."""
        import tempfile
        from pathlib import Path

        from ..placement import ort_trace_placement, read_ort_trace

        with tempfile.TemporaryDirectory(prefix="edgekd-ort-profile-") as tmp:
            session = self._session(profile_prefix=str(Path(tmp) / "ort"))
            for _ in range(max(runs, 2)):  # the first run is left out of the time shares
                session.run(None, {self.input.name: x})
            trace = read_ort_trace(session.end_profiling())
        p = ort_trace_placement(trace, self.options["provider"])
        p["source"] += f" ({max(runs, 2)} runs of a separate session)"
        return p

    def close_impl(self):
        self.session = None

    def describe(self) -> dict:
        return {"backend": self.name, "runtime": f"onnxruntime {self.ort.__version__}",
                "providers": self.session.get_providers(), "threads": self.threads}

    def metadata(self) -> dict:
        return dict(self.session.get_modelmeta().custom_metadata_map)

    def input_shape(self) -> list:
        return list(self.input.shape)

    def input_spec(self) -> list[InputSpec]:
        return [InputSpec(i.name, tuple(i.shape), _NUMPY_TYPES.get(i.type), i.type) for i in self.session.get_inputs()]

    def infer(self, x):
        """Output and timings (s): ``transfer`` (host->device, GPU providers) and ``compute``."""
        if not self.on_gpu:
            t0 = time.perf_counter()
            out = self.session.run(None, {self.input.name: x})[0]
            return out, {"compute": time.perf_counter() - t0}
        t0 = time.perf_counter()
        xv = self.ort.OrtValue.ortvalue_from_numpy(x, "cuda", 0)
        binding = self.session.io_binding()
        binding.bind_ortvalue_input(self.input.name, xv)
        binding.bind_output(self.session.get_outputs()[0].name, "cuda")
        t1 = time.perf_counter()
        self.session.run_with_iobinding(binding)
        t2 = time.perf_counter()
        out = binding.copy_outputs_to_cpu()[0]
        t3 = time.perf_counter()
        return out, {"transfer": (t1 - t0) + (t3 - t2), "compute": t2 - t1}


class _OrtGpu(OrtRunner):
    accelerator = "cuda"
    precisions = ("fp32", "fp16", "int8")


register_backend("ort-cpu", aliases=("onnxruntime",), provider="CPUExecutionProvider")(OrtRunner)
register_backend("ort-cuda", provider="CUDAExecutionProvider")(_OrtGpu)
register_backend("ort-tensorrt", provider="TensorrtExecutionProvider")(_OrtGpu)
register_backend("ort-xnnpack", provider="XnnpackExecutionProvider")(OrtRunner)
