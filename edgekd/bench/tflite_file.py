"""A LiteRT (TFLite) flatbuffer on disk: is it one, and the edgekd model card it carries (torch-free).

A ``.tflite`` file is a flatbuffer with the identifier ``TFL3`` at bytes 4..8.  Its schema has a
``metadata`` list of (name, buffer) pairs for whatever a producer wants to keep with the graph
(TensorFlow Lite's own metadata is one such entry, ``TFLITE_METADATA``).  edgekd keeps the same model
card that the ONNX file carries in ``metadata_props`` (task, input shape, layout, normalisation, output
range, precision, reference metrics) as one UTF-8 JSON object of strings under the name ``edgekd``, so
the bench reads a ``.tflite`` file exactly as it reads an ONNX one.  Reading needs only
``ai-edge-litert`` (its generated schema, over ``flatbuffers``); writing uses its ``flatbuffer_utils``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

from ..errors import EdgekdError, MissingDependencyError

METADATA_NAME = "edgekd"
_IDENTIFIER = b"TFL3"
_NEEDS = "ai-edge-litert is not installed; pip install ai-edge-litert (the LiteRT interpreter, numpy + flatbuffers only)"


def read_tflite(path) -> bytes:
    """The bytes of ``path``, refused in one line unless it is a LiteRT flatbuffer."""
    path = Path(path)
    data = path.read_bytes()
    if len(data) < 8 or data[4:8] != _IDENTIFIER:
        raise EdgekdError(f"{path} is not a LiteRT/TFLite model (no TFL3 flatbuffer identifier); "
                          "give the model.tflite written by edgekd export --format litert")
    return data


def _schema():
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError:
        raise MissingDependencyError(_NEEDS) from None
    return schema_py_generated


def read_metadata(data: bytes, where: str = "the model") -> dict:
    """The edgekd model card in a TFLite flatbuffer ({} when it has none), as a dict of strings."""
    schema = _schema()
    try:
        model = schema.Model.GetRootAs(data, 0)
        for i in range(model.MetadataLength()):
            entry = model.Metadata(i)
            if (entry.Name() or b"").decode() != METADATA_NAME:
                continue
            buf = model.Buffers(entry.Buffer())
            # Buffers past 2 GB are stored after the flatbuffer (offset/size); small ones inline.
            raw = data[buf.Offset(): buf.Offset() + buf.Size()] if buf.Offset() else buf.DataAsNumpy().tobytes()
            return {str(k): str(v) for k, v in json.loads(raw.decode()).items()}
    except Exception as e:  # untrusted bytes: struct, index, decode or JSON errors all mean a damaged file
        if isinstance(e, EdgekdError):
            raise
        raise EdgekdError(f"{where} is a damaged or truncated TFLite flatbuffer ({type(e).__name__} reading its tables); "
                          "export it again with edgekd export --format litert") from None
    return {}


def embed_metadata(data: bytes, meta: dict) -> bytes:
    """``data`` (a TFLite flatbuffer) with ``meta`` as its edgekd model card (an earlier card is replaced)."""
    import numpy as np

    try:
        from ai_edge_litert.tools import flatbuffer_utils
    except ImportError:
        raise MissingDependencyError(_NEEDS) from None
    schema = _schema()
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    card = schema.BufferT()
    card.data = np.frombuffer(json.dumps({k: str(v) for k, v in meta.items()}).encode(), dtype=np.uint8)
    model.metadata = model.metadata or []
    old = [m for m in model.metadata if (m.name.decode() if isinstance(m.name, bytes) else m.name) == METADATA_NAME]
    if old:  # the earlier card's buffer takes the new card
        model.buffers[old[0].buffer] = card
        return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
    model.buffers.append(card)
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(model.buffers) - 1
    model.metadata.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


@contextlib.contextmanager
def native_output_muted():
    """LiteRT's C++ core prints INFO lines ("Created TensorFlow Lite XNNPACK delegate") straight to the
    process's stdout/stderr, past Python's: they are muted while a model loads, so edgekd's output stays its own."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    try:
        saved = [os.dup(1), os.dup(2)]
    except OSError:  # no file descriptors to redirect (an embedded interpreter): print as they are
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, null):
            os.close(fd)
