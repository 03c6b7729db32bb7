"""``import tensorrt`` with one clear line when it cannot be imported (torch-free).

The bench's TensorRT runner deserialises engines with it, and export's engine build
(export/tensorrt_build.py) builds them with it; it lives here, below both, so bench imports nothing from export.
"""

from __future__ import annotations

from ..errors import MissingDependencyError


def import_tensorrt():
    """``import tensorrt`` or a clear :class:`MissingDependencyError` (an ``ImportError`` of any kind:
    the registry's placeholder packages and missing CUDA libraries fail at import too)."""
    try:
        import tensorrt as trt  # noqa: F401
    except ImportError as e:
        raise MissingDependencyError(
            f"TensorRT is not available here ({str(e).splitlines()[0][:120] or 'not installed'}); the ONNX file was still "
            "written: build the engine on the device (JetPack ships TensorRT) with: edgekd export RUN --format tensorrt"
        ) from None
    except Exception as e:  # e.g. a wheel that cannot find libnvinfer
        raise MissingDependencyError(f"TensorRT failed to load ({type(e).__name__}: {str(e)[:120]}); the ONNX file was still written") from None
    return trt
