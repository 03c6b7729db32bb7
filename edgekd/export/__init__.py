"""``edgekd export``: ONNX (fp32 / fp16), INT8 QDQ, TensorRT engines.

formats.py registers the formats and precisions, job.py holds one export's state, pipeline.py runs
the steps: onnx_export.py (fp32, fp16), quantize.py (int8), tensorrt_build.py (engines).  Nothing is
imported here: the CLI and the profile schema read formats.py and must import fast.
"""

from __future__ import annotations

_LAZY = {"run_export": "pipeline", "export_run": "pipeline", "ExportRequest": "pipeline", "export": "pipeline", "ExportJob": "job", "ExportOptions": "job", "OPSETS": "job"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
