"""Inference back-ends for the bench, one file each, behind one protocol (:class:`BaseRunner`).

ONNX Runtime (``ort.py``: CPU, CUDA, TensorRT EP, XNNPACK), OpenVINO (``openvino.py``), TensorRT
engines (``tensorrt.py``), LiteRT ``.tflite`` files (``litert.py``) and the PyTorch checkpoint as the reference (``torch_ref.py``).  Each imports
its runtime only when opened: torch is never needed for ONNX or engines.  Adding a backend is one new
file here that registers itself (``@register_backend``) and names the files it opens (``suffixes``).
"""

from .base import (BaseRunner, InputSpec, auto_backend, backend_class, canonical, create_runner, file_kinds, kind_of_suffix,
                   list_backends, providers_by_backend, register_backend, unavailable)

__all__ = ["BaseRunner", "InputSpec", "auto_backend", "backend_class", "canonical", "create_runner", "file_kinds", "kind_of_suffix",
           "list_backends", "providers_by_backend", "register_backend", "unavailable"]
