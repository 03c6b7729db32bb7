"""LiteRT (formerly TensorFlow Lite) on the CPU through its XNNPACK delegate (``--backend litert``): what an Android app runs.

``pip install ai-edge-litert`` (numpy and flatbuffers only, no torch).  The interpreter's default op
resolver applies the XNNPACK delegate with ``--threads`` threads, as LiteRT's Android runtime does.

The bench hands every runner the same NCHW float batch (bench/evaluate.py).  A ``.tflite`` written by
``edgekd export --format litert`` takes NHWC input and gives NHWC output (its model card says so in
``layout`` / ``output_layout``; a file without one is NHWC when its last input axis is 3); this runner
transposes in and out, and quantises a full-integer file's int8 input and dequantises its output with
the scale and zero point the file declares.  That work is timed apart as the ``io`` stage: on a phone
the camera frame is HWC already, so ``compute`` is the interpreter alone.
"""

from __future__ import annotations

import time

from ...errors import EdgekdError, MissingDependencyError
from .base import BaseRunner, installed, register_backend

_MISSING = "ai-edge-litert is not installed; pip install ai-edge-litert (the LiteRT interpreter: numpy + flatbuffers, no torch)"


@register_backend("litert", aliases=("tflite",))
class LiteRTRunner(BaseRunner):
    """A LiteRT interpreter on the CPU with the XNNPACK delegate (fp32, fp16-weight and int8 ``.tflite`` files)."""

    model_kind, suffixes, file_noun = "tflite", (".tflite",), "a LiteRT model"
    runtime = "litert"
    precisions = ("fp32", "fp16", "int8")

    @classmethod
    def unavailable(cls, **_) -> str | None:
        return None if installed("ai_edge_litert") else _MISSING

    def open_impl(self):
        try:
            from ai_edge_litert import interpreter as litert
        except ImportError:
            raise MissingDependencyError(_MISSING) from None
        from ..tflite_file import native_output_muted, read_metadata, read_tflite

        data = read_tflite(self.path)
        self.meta = read_metadata(data, str(self.path))
        try:
            with native_output_muted():
                self.interp = litert.Interpreter(model_content=data, num_threads=int(self.threads or 1))
                self.interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise EdgekdError(f"LiteRT cannot load {self.path} ({str(e).splitlines()[0][:160]}); "
                              "give the model.tflite written by edgekd export --format litert") from None
        inputs, outputs = self.interp.get_input_details(), self.interp.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise EdgekdError(f"{self.path.name} has {len(inputs)} inputs and {len(outputs)} outputs; edgekd bench runs one image in, one map out")
        self.inp, self.out = inputs[0], outputs[0]
        shape = list(self.inp["shape"])
        guess = "NHWC" if len(shape) == 4 and shape[3] == 3 and shape[1] != 3 else "NCHW"
        self.nhwc_in = self.meta.get("layout", guess) == "NHWC"
        self.nhwc_out = self.meta.get("output_layout", self.meta.get("layout", guess)) == "NHWC" and len(self.out["shape"]) == 4
        self.batch = shape[0]
        self.delegated = any(op.get("op_name") == "DELEGATE" for op in self.interp._get_ops_details())
        self.version = getattr(litert, "__version__", None) or _version()

    def close_impl(self):
        self.interp = None

    def describe(self) -> dict:
        return {"backend": self.name, "runtime": f"litert {self.version}", "threads": self.threads,
                "providers": ["XNNPACK" if self.delegated else "builtin kernels (no delegate took the graph)"]}

    def metadata(self) -> dict:
        return dict(self.meta)

    def input_shape(self) -> list:
        """The input as the bench feeds it: (batch, 3, H, W), whatever the file's own layout."""
        s = [int(d) for d in self.inp["shape"]]
        return [s[0], s[3], s[1], s[2]] if self.nhwc_in and len(s) == 4 else s

    def _resize(self, batch: int) -> None:
        """The exported graph has batch 1; LiteRT re-plans it for another batch (the accuracy pass's 8)."""
        shape = [batch, *[int(d) for d in self.inp["shape"][1:]]]
        try:
            self.interp.resize_tensor_input(self.inp["index"], shape, strict=False)
            self.interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise EdgekdError(f"{self.path.name} runs only at batch {self.batch} ({str(e).splitlines()[0][:120]}); bench it with --batch {self.batch}") from None
        self.inp, self.out = self.interp.get_input_details()[0], self.interp.get_output_details()[0]
        self.batch = batch

    def _to_file(self, x):
        import numpy as np

        if self.nhwc_in:
            x = x.transpose(0, 2, 3, 1)
        dtype = self.inp["dtype"]
        if dtype != np.float32:  # full-integer input: q = round(x / scale) + zero point
            scale, zero = self.inp["quantization"]
            info = np.iinfo(dtype)
            x = np.clip(np.round(x / scale) + zero, info.min, info.max)
        return np.ascontiguousarray(x, dtype=dtype)

    def _from_file(self, y):
        import numpy as np

        if y.dtype != np.float32:
            scale, zero = self.out["quantization"]
            y = (y.astype(np.float32) - zero) * scale if scale else y.astype(np.float32)
        return np.ascontiguousarray(y.transpose(0, 3, 1, 2)) if self.nhwc_out else y

    def infer(self, x):
        """NCHW float32 in, NCHW float32 out; timings ``io`` (layout, int8 (de)quantisation) and ``compute``."""
        if x.shape[0] != self.batch:
            self._resize(x.shape[0])
        t0 = time.perf_counter()
        xf = self._to_file(x)
        t1 = time.perf_counter()
        self.interp.set_tensor(self.inp["index"], xf)
        self.interp.invoke()
        y = self.interp.get_tensor(self.out["index"])
        t2 = time.perf_counter()
        out = self._from_file(y)
        t3 = time.perf_counter()
        return out, {"io": (t1 - t0) + (t3 - t2), "compute": t2 - t1}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ai-edge-litert")
    except PackageNotFoundError:
        return "unknown"
