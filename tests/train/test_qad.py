"""Quantisation-aware distillation: torchao PT2E fake quantisation in the deployment's format, and the QDQ file it exports."""

import json

import onnx
import pytest
import torch

from conftest import run_cli

pytest.importorskip("torchao", reason="edgekd distill --qat-from needs torchao (pip install 'edgekd[qat]')")


def _fake_quantizers(prepared):
    return [m for m in prepared.modules() if type(m).__name__.endswith("FakeQuantize")]


@pytest.mark.parametrize("symmetric", [False, True])
def test_fake_quantisation_matches_the_deployment_format(symmetric):
    from edgekd.train.qat import float_weights, prepare

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1))
    prepared = prepare(net, torch.randn(2, 3, 16, 16), symmetric)
    prepared(torch.randn(2, 3, 16, 16))
    fqs = _fake_quantizers(prepared)
    weights = [f for f in fqs if f.qscheme == torch.per_channel_symmetric]
    acts = [f for f in fqs if f.qscheme != torch.per_channel_symmetric]
    assert len(weights) == 2 and all((f.quant_min, f.quant_max, f.dtype) == (-127, 127, torch.int8) for f in weights)
    want = (torch.int8, -128, 127, torch.per_tensor_symmetric) if symmetric else (torch.uint8, 0, 255, torch.per_tensor_affine)
    assert acts and all((f.dtype, f.quant_min, f.quant_max, f.qscheme) == want for f in acts)
    sd = float_weights(prepared, net)
    assert set(sd) == set(net.state_dict())  # the fine-tuned weights go back into the eager student by name


def test_qad_run_exports_a_qdq_file_with_int8_convs(depth_run, tmp_path):
    out = tmp_path / "qat"
    res = run_cli(["distill", "--qat-from", depth_run, "--epochs", "1", "--train-size", "4", "--val-size", "2", "--batch-size", "2",
                   "--workers", "0", "--out", out])
    assert f"edgekd export {out} --precision int8" in res.output
    ckpt = torch.load(out / "best.pt", weights_only=True)
    src = torch.load(depth_run / "best.pt", weights_only=True)
    assert ckpt["qat"]["from"] == str(depth_run / "best.pt") and ckpt["qat"]["activations"] == "s8 symmetric"  # the jetson target: TensorRT
    key = "encoder.conv_stem.weight"
    assert not torch.equal(ckpt["student"][key], src["student"][key])  # it trained
    run_cli(["export", out, "--precision", "int8", "--calib-size", "2", "--eval-size", "2", "--max-drop", "1"])
    g = onnx.load(str(out / "model.int8.onnx")).graph
    producer = {o: n.op_type for n in g.node for o in n.output}
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n.op_type)
    convs = [n for n in g.node if n.op_type == "Conv"]
    quantized = [n for n in convs if producer.get(n.input[0]) == "DequantizeLinear" and producer.get(n.input[1]) == "DequantizeLinear"
                 and consumers.get(n.output[0]) == ["QuantizeLinear"]]
    assert len(quantized) >= len(convs) - 2  # DQ -> Conv -> Q: ONNX Runtime's QLinearConv pattern (the float head aside)
    rec = json.loads((out / "export.json").read_text())["int8"]
    assert rec["pass"] and rec["qat"]["from"] == str(depth_run / "best.pt")


def test_qat_from_bad_input_is_one_line(tmp_path, depth_run):
    res = run_cli(["distill", "--qat-from", tmp_path / "nowhere"], expect=2)
    assert "--qat-from" in res.output and "no best.pt or last.pt" in res.output
    res = run_cli(["distill", "--qat-from", depth_run, "--resume"], expect=2)
    assert "--resume and --qat-from contradict each other" in res.output
