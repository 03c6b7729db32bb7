"""Any ONNX model as a frozen teacher: cut at a node output, run in torch (onnx2torch) or ONNX Runtime.

* Candidates are the 4-D float outputs of the graph's nodes.  Their strides come from one ONNX Runtime
  run with every intermediate output exposed, at the graph's fixed input size or 128x128 (shape
  inference alone cannot give strides of a dynamic graph).
* Without ``--teacher-layer`` the layer is the *last output with the most channels* among those at the
  student's stride: an encoder's last stage is its widest map at that stride, while a neck (FPN) that
  follows narrows the channels (PP-OCRv4 det: the backbone's 384-channel map, not the neck's 96).
* The graph is cut there with ``onnx.utils.Extractor`` and converted with onnx2torch, so it runs on the
  student's device; the conversion is checked against ONNX Runtime once, and where it fails (an op
  onnx2torch lacks, or different numbers) ONNX Runtime runs the cut graph on the CPU instead.
* The input normalisation is the user's (``--teacher-norm``): an ONNX file does not record it.
  A graph with a fixed input size gets its input resized to that size.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from ..errors import EdgekdError
from .teacher import FrozenTeacher

PROBE_SIZE = 128  # dynamic graphs are probed at 128x128: strides up to 64 come out whole, and it is quick


@dataclass(frozen=True)
class Candidate:
    name: str
    op: str
    channels: int
    stride: int
    height: int
    width: int


def load_onnx(path):
    """The model proto, or one line saying why ``path`` is not a usable ONNX file."""
    import onnx

    path = Path(path).expanduser()
    if not path.is_file():
        raise EdgekdError(f"teacher ONNX file {path} does not exist")
    try:
        model = onnx.load(str(path))
    except Exception as e:  # DecodeError and friends: protobuf says little more
        raise EdgekdError(f"{path} is not an ONNX model ({type(e).__name__}); give a .onnx file exported with torch.onnx or a model zoo") from None
    if not model.graph.node:
        raise EdgekdError(f"{path} is not an ONNX model (no graph nodes)")
    return model


def graph_input(model) -> tuple[str, list]:
    """The image input's name and dims (ints, or None where dynamic)."""
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise EdgekdError(f"the ONNX teacher must have one image input, it has {len(inputs)} ({', '.join(i.name for i in inputs)})")
    dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in inputs[0].type.tensor_type.shape.dim]
    if len(dims) != 4 or dims[1] not in (None, 3):
        raise EdgekdError(f"the ONNX teacher's input {inputs[0].name} has shape {dims}; an NCHW RGB image input (N, 3, H, W) is needed")
    return inputs[0].name, dims


def probe_size(dims, image_size=None) -> tuple[int, int]:
    if dims[2] and dims[3]:
        return dims[2], dims[3]
    return tuple(image_size) if image_size else (PROBE_SIZE, PROBE_SIZE)


def _exposed(model):
    """A copy of ``model`` whose graph outputs are all its float node outputs (for one probing run)."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    m = onnx.ModelProto()
    m.CopyFrom(model)
    del m.graph.output[:]
    names = []
    for node in model.graph.node:
        for out in node.output:
            t = types.get(out)
            if node.op_type != "Constant" and t is not None and t.elem_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16):
                rank = len(t.shape.dim) if t.HasField("shape") else None
                if rank in (None, 4):
                    m.graph.output.append(onnx.helper.make_tensor_value_info(out, t.elem_type, None))
                    names.append((out, node.op_type))
    return m, names


def probe(model, image_size=None) -> tuple[list[Candidate], tuple[int, int]]:
    """Every 4-D float node output with its channels and stride, in graph (topological) order."""
    import onnxruntime as ort

    name, dims = graph_input(model)
    h, w = probe_size(dims, image_size)
    exposed, names = _exposed(model)
    try:
        sess = ort.InferenceSession(exposed.SerializeToString(), providers=["CPUExecutionProvider"])
        x = np.random.default_rng(0).standard_normal((dims[0] or 1, 3, h, w)).astype(np.float32)
        outs = sess.run([n for n, _ in names], {name: x})
    except Exception as e:
        raise EdgekdError(f"ONNX Runtime cannot run the teacher graph at {h}x{w} ({str(e).splitlines()[0][:160]})") from None
    cands = []
    for (out, op), a in zip(names, outs):
        if a.ndim == 4 and a.shape[2] > 1 and a.shape[3] > 1:
            stride = max(1, round(h / a.shape[2]))
            cands.append(Candidate(out, op, int(a.shape[1]), stride, int(a.shape[2]), int(a.shape[3])))
    return cands, (h, w)


def choose_layer(cands: list[Candidate], stride: int, source: str = "the ONNX teacher") -> Candidate:
    """The last widest output at ``stride``; else at the coarsest stride below it; else the finest above it."""
    if not cands:
        raise EdgekdError(f"{source} has no 4-D feature output (N, C, H, W) with H, W > 1 to distil from; it cannot be a dense teacher")
    strides = sorted({c.stride for c in cands})
    below = [s for s in strides if s <= stride]
    s = stride if stride in strides else (below[-1] if below else strides[0])
    at = [c for c in cands if c.stride == s]
    widest = max(c.channels for c in at)
    return [c for c in at if c.channels == widest][-1]


def check_layer(model, layer: str, source: str) -> None:
    outputs = [o for n in model.graph.node for o in n.output]
    if layer not in outputs:
        close = difflib.get_close_matches(layer, outputs, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise EdgekdError(f"--teacher-layer {layer!r} is not a node output of {source}; {hint}list them with: edgekd teacher inspect {source}")


def cut(model, layer: str):
    """The sub-graph from the image input to ``layer`` (onnx.utils.Extractor keeps Constant-node weights)."""
    import onnx
    import onnx.utils

    name, _ = graph_input(model)
    inferred = onnx.shape_inference.infer_shapes(model)  # the Extractor needs the cut output's value_info
    if layer not in {v.name for v in inferred.graph.value_info} | {o.name for o in inferred.graph.output}:
        inferred.graph.value_info.append(onnx.helper.make_tensor_value_info(layer, onnx.TensorProto.FLOAT, None))
    return onnx.utils.Extractor(inferred).extract_model([name], [layer])


class OrtModule(nn.Module):
    """Runs an ONNX graph with ONNX Runtime (CPU) inside a torch model: numpy in, tensor out on the input's device."""

    def __init__(self, model_bytes: bytes, fixed_batch: int | None = None):
        super().__init__()
        self.model_bytes, self.fixed_batch, self._sess = model_bytes, fixed_batch, None

    def _session(self):
        if self._sess is None:  # created on first use: a session does not pickle or deep-copy
            import onnxruntime as ort

            self._sess = ort.InferenceSession(self.model_bytes, providers=["CPUExecutionProvider"])
        return self._sess

    def __getstate__(self):  # copies (deepcopy, pickling) rebuild the session on first use
        return {k: (None if k == "_sess" else v) for k, v in self.__dict__.items()}

    def forward(self, x):
        sess = self._session()
        a = x.detach().float().cpu().numpy()
        name = sess.get_inputs()[0].name
        parts = np.split(a, len(a)) if self.fixed_batch == 1 and len(a) > 1 else [a]
        y = np.concatenate([sess.run(None, {name: p})[0] for p in parts])
        return torch.from_numpy(y).to(x.device, x.dtype)


class _PerSample(nn.Module):
    """A graph exported with batch 1 fixed: run the batch one sample at a time."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return torch.cat([self.net(x[i:i + 1]) for i in range(len(x))]) if len(x) > 1 else self.net(x)


def constants_to_initializers(model):
    """Constant-node tensors become initializers (PP-OCR's weights are Constant nodes; onnx2torch wants initializers)."""
    keep, inits = [], []
    for node in model.graph.node:
        value = [a for a in node.attribute if a.name == "value"] if node.op_type == "Constant" else []
        if value and len(node.attribute) == 1:
            t = type(value[0].t)()
            t.CopyFrom(value[0].t)
            t.name = node.output[0]
            inits.append(t)
        else:
            keep.append(node)
    del model.graph.node[:]
    model.graph.node.extend(keep)
    model.graph.initializer.extend(inits)
    return model


def to_module(sub, fixed_batch, check_hw) -> tuple[nn.Module, str]:
    """onnx2torch when it converts and agrees with ONNX Runtime; else ONNX Runtime. Returns (module, which)."""
    ort_mod = OrtModule(sub.SerializeToString(), fixed_batch)
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((1, 3, *check_hw)).astype(np.float32))
    ref = ort_mod(x)
    try:
        from onnx2torch import convert
    except ImportError:
        return ort_mod, "onnxruntime (CPU; pip install onnx2torch to run it in torch on the student's device)"
    try:
        net = convert(constants_to_initializers(sub)).eval()
        with torch.no_grad():
            got = net(x)
        err = float((got - ref).abs().max() / ref.abs().max().clamp_min(1e-6))
    except Exception as e:
        return ort_mod, f"onnxruntime (CPU; onnx2torch failed: {str(e).splitlines()[0][:100]})"
    if not err < 1e-3:
        return ort_mod, f"onnxruntime (CPU; onnx2torch differs by {err:.1e})"
    return (_PerSample(net) if fixed_batch == 1 else net), "torch (onnx2torch)"


def onnx_teacher(path, layer=None, norm=None, stride=32, display=None) -> FrozenTeacher:
    """A frozen teacher from an ONNX file: cut at ``layer`` (or the automatic choice), with the input norm named."""
    from .teacher_input import TeacherInput, parse_norm

    source = display or str(path)
    model = load_onnx(path)
    _, dims = graph_input(model)
    fixed = (dims[2], dims[3]) if dims[2] and dims[3] else None
    cands, hw = probe(model)
    if layer:
        check_layer(model, layer, source)
        chosen = next((c for c in cands if c.name == layer), None)
        if chosen is None:
            raise EdgekdError(f"--teacher-layer {layer!r} of {source} is not a 4-D feature map (N, C, H, W); pick one listed by: edgekd teacher inspect {source}")
    else:
        chosen = choose_layer(cands, stride, source)
    side = max(2 * chosen.stride, 32)  # a small check (2x2 at the cut for stride >= 16): enough to compare, and quick
    check_hw = fixed or (side, side)
    net, runtime = to_module(cut(model, chosen.name), dims[0], check_hw)
    enc = nn.Sequential(TeacherInput(parse_norm(norm), fixed), net)
    how = "given" if layer else "chosen"
    kind = f"onnx, layer {chosen.name} ({how}, stride {chosen.stride}), {runtime}, norm {parse_norm(norm).text}"
    return FrozenTeacher(enc, chosen.channels, source, kind)


def build(req) -> FrozenTeacher:
    return onnx_teacher(req.spec, req.layer, req.norm, req.stride)


# Named ONNX teachers: their input normalisation as their own pre-processing does it.
NAMED_NORMS = {"ppocr-det": "0.5,0.5:bgr"}  # rapidocr config.yaml Det mean/std 0.5 on [0, 1], OpenCV BGR


def build_packaged(req) -> FrozenTeacher:
    from .packaged import packaged_weights_path

    path = packaged_weights_path(req.spec)
    return onnx_teacher(path, req.layer, req.norm or NAMED_NORMS.get(req.spec), req.stride, display=req.spec)


def inspect_rows(path, image_size=None, stride=32, show_all=False) -> tuple[list[Candidate], Candidate, tuple]:
    """Candidates for ``edgekd teacher inspect``: all, or the last of each run of equal (stride, channels)."""
    model = load_onnx(path)
    cands, hw = probe(model, image_size)
    chosen = choose_layer(cands, stride, str(path))
    if show_all:
        return cands, chosen, hw
    rows = [c for i, c in enumerate(cands)
            if i + 1 == len(cands) or (cands[i + 1].stride, cands[i + 1].channels) != (c.stride, c.channels) or c == chosen]
    return rows, chosen, hw
