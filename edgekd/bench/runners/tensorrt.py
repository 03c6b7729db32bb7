"""A serialized TensorRT engine (``--backend tensorrt``), run with ``execute_async_v3`` through cuda-python (no torch)."""

from __future__ import annotations

import json
import time

from ...card import engine_card_path
from ...errors import EdgekdError, MissingDependencyError
from ..tensorrt_runtime import import_tensorrt
from .base import BaseRunner, register_backend


def _import_cudart():
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart
        except ImportError:
            raise MissingDependencyError("running TensorRT engines needs cuda-python: pip install cuda-python") from None
    return cudart


@register_backend("tensorrt")
class TensorRTRunner(BaseRunner):
    """A TensorRT engine with its own device buffers and stream; ``close()`` frees them."""

    model_kind = "engine"
    suffixes = (".engine", ".plan", ".trt")
    file_noun = "a TensorRT engine"
    runtime = "tensorrt"
    accelerator = "cuda"
    precisions = ("fp32", "fp16", "int8")
    accuracy_batch = 1  # an engine's optimisation profile may stop at batch 1

    @classmethod
    def unavailable(cls, **_) -> str | None:
        try:
            import_tensorrt()
            _import_cudart()
        except EdgekdError as e:
            return str(e)
        return None

    def open_impl(self):
        trt = import_tensorrt()
        cudart = _import_cudart()
        self.trt, self.cudart = trt, cudart
        self.runtime_ = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        with open(self.path, "rb") as f:
            self.engine = self.runtime_.deserialize_cuda_engine(f.read())
        if self.engine is None:
            raise EdgekdError(f"{self.path} is not a TensorRT engine for this TensorRT/GPU; rebuild it on this device")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.in_name = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self.out_name = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
        _, self.stream = cudart.cudaStreamCreate()
        self._buffers = {}

    def close_impl(self):
        """Free the device buffers and the stream (Polygraphy's deactivate)."""
        for ptr, _ in self._buffers.values():
            self.cudart.cudaFree(ptr)
        self._buffers = {}
        self.cudart.cudaStreamDestroy(self.stream)
        self.context = self.engine = None

    def describe(self) -> dict:
        return {"backend": "tensorrt", "runtime": f"tensorrt {self.trt.__version__}", "providers": ["TensorRT"], "threads": None}

    def metadata(self) -> dict:
        side = engine_card_path(self.path)  # written by edgekd export next to the engine
        return json.loads(side.read_text()) if side.exists() else {}

    def _alloc(self, name, nbytes):
        if self._buffers.get(name, (None, 0))[1] < nbytes:
            if name in self._buffers:
                self.cudart.cudaFree(self._buffers[name][0])
            _, ptr = self.cudart.cudaMalloc(nbytes)
            self._buffers[name] = (ptr, nbytes)
        return self._buffers[name][0]

    def infer(self, x):
        import numpy as np

        cr = self.cudart
        x = np.ascontiguousarray(x, dtype=np.float32)
        self.context.set_input_shape(self.in_name, x.shape)
        out = np.empty(tuple(self.context.get_tensor_shape(self.out_name)), np.float32)
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
