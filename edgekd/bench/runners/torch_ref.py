"""The PyTorch checkpoint itself (``--backend torch``): the reference the exported models are judged against."""

from __future__ import annotations

import time

from ...errors import MissingDependencyError
from .base import BaseRunner, installed, register_backend


@register_backend("torch")
class TorchRunner(BaseRunner):
    """Eager PyTorch on the GPU when there is one (fp16 there when asked), else the CPU."""

    model_kind = "torch"
    suffixes = (".pt", ".pth")
    file_noun = "a .pt checkpoint"
    runtime = "torch"
    precisions = ("fp32",)

    @classmethod
    def unavailable(cls, **_) -> str | None:
        return None if installed("torch") else "--backend torch needs PyTorch; bench an ONNX file instead"

    def open_impl(self):
        try:
            import torch
        except ImportError:
            raise MissingDependencyError("--backend torch needs PyTorch; bench an ONNX file instead") from None
        from ...models.run import load_student

        self.torch = torch
        if self.threads:
            torch.set_num_threads(self.threads)
        self.model, self.task, self.cfg, self.ckpt = load_student(self.path)
        device = self.options.get("device", "auto")
        cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
        self.device = torch.device("cuda" if cuda else "cpu")
        self.dtype = torch.float16 if self.precision == "fp16" and self.device.type == "cuda" else torch.float32
        self.model.to(self.device, self.dtype)
        self.threads = torch.get_num_threads()

    def close_impl(self):
        self.model = None
        if self.device.type == "cuda":
            self.torch.cuda.empty_cache()

    def describe(self) -> dict:
        return {"backend": "torch", "runtime": f"torch {self.torch.__version__}", "providers": [str(self.device)], "threads": self.threads}

    def metadata(self) -> dict:
        from ...card import ModelCard

        return ModelCard.of_run(self.task, self.cfg, self.ckpt, "fp32").to_props()

    def input_shape(self) -> list:
        return [None, 3, *self.cfg.data.image_size]

    def infer(self, x):
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
