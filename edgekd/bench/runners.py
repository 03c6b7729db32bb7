"""Inference back-ends for the bench: ONNX Runtime (CPU, CUDA, TensorRT EP, XNNPACK), TensorRT engines,
and a PyTorch checkpoint as the reference.  Each is imported only when chosen: torch is never needed
for ONNX or engines."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..errors import EdgekdError, MissingDependencyError

ORT_BACKENDS = {
    "ort-cpu": "CPUExecutionProvider",
    "ort-cuda": "CUDAExecutionProvider",
    "ort-tensorrt": "TensorrtExecutionProvider",
    "ort-xnnpack": "XnnpackExecutionProvider",
}


class OrtRunner:
    """An ONNX Runtime session on one execution provider (with CPU fallback for unsupported nodes)."""

    def __init__(self, path, backend: str, threads: int):
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingDependencyError("onnxruntime is not installed; pip install onnxruntime (or onnxruntime-gpu)") from None
        provider = ORT_BACKENDS[backend]
        available = ort.get_available_providers()
        if provider not in available:
            raise MissingDependencyError(
                f"backend {backend} is not available on this machine (onnxruntime {ort.__version__} has: "
                f"{', '.join(p.replace('ExecutionProvider', '') for p in available)}); use --backend ort-cpu or install the runtime that has it"
            )
        so = ort.SessionOptions()
        so.log_severity_level = 3
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = [provider]
        if backend == "ort-xnnpack":
            # XNNPACK owns its thread pool; ORT's intra-op pool is kept at one thread (ORT's guidance).
            so.intra_op_num_threads = 1
            providers = [(provider, {"intra_op_num_threads": threads}), "CPUExecutionProvider"]
        else:
            so.intra_op_num_threads = threads
            if backend == "ort-tensorrt":
                # fp16 kernels where the graph allows, and a cache so that the engine is built once per device.
                cache = str(Path(path).parent / ".ort-trt-cache")
                providers = [(provider, {"trt_fp16_enable": True, "trt_engine_cache_enable": True,
                                         "trt_engine_cache_path": cache, "trt_timing_cache_enable": True}), "CUDAExecutionProvider"]
            if provider != "CPUExecutionProvider":
                providers.append("CPUExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(path), so, providers=providers)
        except Exception as e:
            raise EdgekdError(f"onnxruntime cannot load {path}: {str(e).splitlines()[0][:200]}") from None
        self.backend, self.threads, self.ort = backend, threads, ort
        self.input = self.session.get_inputs()[0]
        self.on_gpu = backend in ("ort-cuda", "ort-tensorrt")

    def describe(self) -> dict:
        return {"backend": self.backend, "runtime": f"onnxruntime {self.ort.__version__}",
                "providers": self.session.get_providers(), "threads": self.threads}

    def infer(self, x: np.ndarray) -> tuple[np.ndarray, dict]:
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


class TensorRTRunner:
    """A serialized TensorRT engine, run with ``execute_async_v3`` through cuda-python (no torch)."""

    def __init__(self, engine_path):
        from ..export.tensorrt_build import import_tensorrt

        trt = import_tensorrt()
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            try:
                from cuda import cudart
            except ImportError:
                raise MissingDependencyError("running TensorRT engines needs cuda-python: pip install cuda-python") from None
        self.trt, self.cudart = trt, cudart
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        with open(engine_path, "rb") as f:
            self.engine = self.runtime.deserialize_cuda_engine(f.read())
        if self.engine is None:
            raise EdgekdError(f"{engine_path} is not a TensorRT engine for this TensorRT/GPU; rebuild it on this device")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.in_name = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self.out_name = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
        _, self.stream = cudart.cudaStreamCreate()
        self._buffers = {}

    def describe(self) -> dict:
        return {"backend": "tensorrt", "runtime": f"tensorrt {self.trt.__version__}", "providers": ["TensorRT"], "threads": None}

    def _alloc(self, name, nbytes):
        if self._buffers.get(name, (None, 0))[1] < nbytes:
            if name in self._buffers:
                self.cudart.cudaFree(self._buffers[name][0])
            _, ptr = self.cudart.cudaMalloc(nbytes)
            self._buffers[name] = (ptr, nbytes)
        return self._buffers[name][0]

    def infer(self, x: np.ndarray):
        cr = self.cudart
        x = np.ascontiguousarray(x, dtype=np.float32)
        self.context.set_input_shape(self.in_name, x.shape)
        out_shape = tuple(self.context.get_tensor_shape(self.out_name))
        out = np.empty(out_shape, np.float32)
        d_in, d_out = self._alloc("in", x.nbytes), self._alloc("out", out.nbytes)
        self.context.set_tensor_address(self.in_name, d_in)
        self.context.set_tensor_address(self.out_name, d_out)
        t0 = time.perf_counter()
        cr.cudaMemcpyAsync(d_in, x.ctypes.data, x.nbytes, cr.cudaMemcpyKind.cudaMemcpyHostToDevice, self.stream)
        cr.cudaStreamSynchronize(self.stream)
        t1 = time.perf_counter()
        self.context.execute_async_v3(self.stream)
        cr.cudaStreamSynchronize(self.stream)
        t2 = time.perf_counter()
        cr.cudaMemcpyAsync(out.ctypes.data, d_out, out.nbytes, cr.cudaMemcpyKind.cudaMemcpyDeviceToHost, self.stream)
        cr.cudaStreamSynchronize(self.stream)
        t3 = time.perf_counter()
        return out, {"transfer": (t1 - t0) + (t3 - t2), "compute": t2 - t1}


class TorchRunner:
    """The PyTorch checkpoint itself (eager; fp16 on GPU when asked): the reference for the others."""

    def __init__(self, ckpt_path, device: str = "cpu", precision: str = "fp32", threads: int = 0):
        try:
            import torch
        except ImportError:
            raise MissingDependencyError("--backend torch needs PyTorch; bench an ONNX file instead") from None
        from ..export.onnx_export import load_student

        self.torch = torch
        if threads:
            torch.set_num_threads(threads)
        self.model, self.task, self.cfg, self.ckpt = load_student(ckpt_path)
        cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
        self.device = torch.device("cuda" if cuda else "cpu")
        self.dtype = torch.float16 if precision == "fp16" and self.device.type == "cuda" else torch.float32
        self.model.to(self.device, self.dtype)
        self.threads = torch.get_num_threads()

    def describe(self) -> dict:
        return {"backend": "torch", "runtime": f"torch {self.torch.__version__}", "providers": [str(self.device)], "threads": self.threads}

    def infer(self, x: np.ndarray):
        torch = self.torch
        t0 = time.perf_counter()
        xt = torch.from_numpy(x).to(self.device, self.dtype)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        with torch.inference_mode():
            y = self.model(xt)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        out = y.float().cpu().numpy()
        t3 = time.perf_counter()
        timing = {"compute": t2 - t1}
        if self.device.type == "cuda":
            timing["transfer"] = (t1 - t0) + (t3 - t2)
        return out, timing
