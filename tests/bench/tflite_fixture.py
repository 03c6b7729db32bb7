"""A tiny depth "model" as the same graph twice, without any converter: a LiteRT flatbuffer (NHWC, written
with the TFLite schema's object API from ai-edge-litert) and an ONNX file (NCHW, onnx.helper), with the
same weights and the same edgekd model card.

The graph is conv 3x3 (3 -> 1 channel, SAME padding, an asymmetric kernel) -> sigmoid -> x 10 metres.
Benched on the same scenes, the two files must predict the same depth; feeding the LiteRT file the
NCHW tensor (or transposing H and W) gives another prediction, which is what the layout tests catch.
"""

from __future__ import annotations

import json

import numpy as np

H, W = 48, 64  # not square: an H/W swap changes the shape too
_RNG = np.random.default_rng(7)
KERNEL = _RNG.standard_normal((1, 3, 3, 3)).astype(np.float32) * 0.5  # OHWI (TFLite's conv layout)
BIAS = np.array([0.3], np.float32)


def model_card(precision: str = "fp32", layout: str = "NCHW", n: int = 4) -> dict:
    """The metadata edgekd export writes (edgekd/card.py: ModelCard.to_props()'s keys), for 4 synthetic validation scenes."""
    shape = [1, H, W, 3] if layout == "NHWC" else [-1, 3, H, W]
    card = {"edgekd_version": "test", "task": "depth", "task_args": "{}", "input_name": "input", "input_shape": json.dumps(shape),
            "layout": layout, "normalisation": json.dumps({"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "scale": 1 / 255}),
            "output": "depth", "output_range": json.dumps([0.0, 10.0]), "class_names": "[]", "student": "fixture", "profile": "fixture",
            "target": "android-arm64", "precision": precision, "primary_metric": "d1", "reference_metrics": "{}",
            "reference_eval": json.dumps({"data": "synthetic", "data_format": "auto", "direction": "AtoB", "split": "val", "n": n, "seed": 0})}
    if layout == "NHWC":
        card["output_layout"] = "NHWC"
    return card


def onnx_bytes(card: dict | None = None) -> bytes:
    """The graph in NCHW for ONNX Runtime (kernel OHWI -> OIHW)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(KERNEL.transpose(0, 3, 1, 2).copy(), "w"), numpy_helper.from_array(BIAS, "b"),
             numpy_helper.from_array(np.array([10.0], np.float32), "scale")]
    nodes = [helper.make_node("Conv", ["input", "w", "b"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Sigmoid", ["c"], ["s"]),
             helper.make_node("Mul", ["s", "scale"], ["output"])]
    g = helper.make_graph(nodes, "fixture", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, H, W])],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 1, H, W])], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    for k, v in (card or model_card()).items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    return m.SerializeToString()


def _tensor(schema, name, shape, buffer):
    t = schema.TensorT()
    t.name, t.shape, t.type, t.buffer = name, list(shape), schema.TensorType.FLOAT32, buffer
    return t


def _buffer(schema, array=None):
    b = schema.BufferT()
    if array is not None:
        b.data = np.frombuffer(np.ascontiguousarray(array, np.float32).tobytes(), np.uint8)
    return b


def _operator(schema, opcode, inputs, outputs, options_type=0, options=None):
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = opcode, inputs, outputs
    op.builtinOptionsType, op.builtinOptions = options_type, options
    return op


def tflite_bytes() -> bytes:
    """The graph in NHWC as a TFLite flatbuffer (no model card: add one with edgekd.bench.tflite_file.embed_metadata)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    codes = []
    for op in (schema.BuiltinOperator.CONV_2D, schema.BuiltinOperator.LOGISTIC, schema.BuiltinOperator.MUL):
        c = schema.OperatorCodeT()
        c.builtinCode, c.deprecatedBuiltinCode, c.version = op, op, 1
        codes.append(c)
    buffers = [_buffer(schema), _buffer(schema, KERNEL), _buffer(schema, BIAS), _buffer(schema, [10.0])] + [_buffer(schema) for _ in range(4)]
    tensors = [_tensor(schema, "input", [1, H, W, 3], 4), _tensor(schema, "kernel", KERNEL.shape, 1), _tensor(schema, "bias", [1], 2),
               _tensor(schema, "scale", [1], 3), _tensor(schema, "conv", [1, H, W, 1], 5), _tensor(schema, "sig", [1, H, W, 1], 6),
               _tensor(schema, "output", [1, H, W, 1], 7)]
    conv = schema.Conv2DOptionsT()
    conv.padding, conv.strideH, conv.strideW = schema.Padding.SAME, 1, 1
    conv.dilationHFactor = conv.dilationWFactor = 1
    ops = [_operator(schema, 0, [0, 1, 2], [4], schema.BuiltinOptions.Conv2DOptions, conv), _operator(schema, 1, [4], [5]),
           _operator(schema, 2, [5, 3], [6], schema.BuiltinOptions.MulOptions, schema.MulOptionsT())]
    sub = schema.SubGraphT()
    sub.tensors, sub.operators, sub.inputs, sub.outputs, sub.name = tensors, ops, [0], [6], "main"
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers, model.description = 3, codes, [sub], buffers, "edgekd test fixture"
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def write_pair(directory, n: int = 4, names=("model.onnx", "model.tflite")):
    """model.onnx and model.tflite of the fixture graph, each with its model card, in ``directory``."""
    from edgekd.bench.tflite_file import embed_metadata

    onnx_path, tflite_path = directory / names[0], directory / names[1]
    onnx_path.write_bytes(onnx_bytes(model_card(n=n)))
    tflite_path.write_bytes(embed_metadata(tflite_bytes(), model_card(layout="NHWC", n=n)))
    return onnx_path, tflite_path
