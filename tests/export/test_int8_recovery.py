"""INT8 that recovers: per-node sensitivity, automatic float fallback, and their bad input.

The planted bad node is honest arithmetic, not a mock: a 1x1 conv ``p`` whose input channel 0 is dead
(a ReLU of a large negative bias: exactly 0 for every image) carries a weight 1000x its others on
that channel.  In float the weight multiplies zero and changes nothing; INT8's per-channel symmetric
weight scale is set by that outlier, so every other weight of the channel rounds to 0 and ``p``'s
output, the gate the student's depth is multiplied by, collapses from 1 to 0.
"""

import json

import numpy as np
import onnx
import pytest
import torch

from conftest import run_cli
from edgekd.errors import EdgekdError


class Gated(torch.nn.Module):
    """depth = student(x) * p(relu(a(x))); in float p(...) == 1, quantized p(...) == 0 (see the module docstring)."""

    def __init__(self, student):
        super().__init__()
        self.a, self.p, self.m = torch.nn.Conv2d(3, 2, 1), torch.nn.Conv2d(2, 1, 1, bias=False), student
        with torch.no_grad():
            self.a.weight.fill_(1e-3)
            self.a.bias.copy_(torch.tensor([-1.0, 1.0]))  # |weights . x| < 0.01: channel 0 dead after the ReLU, channel 1 ~= 1
            self.p.weight.copy_(torch.tensor([1000.0, 1.0]).view(1, 2, 1, 1))

    def forward(self, x):
        return self.m(x) * self.p(torch.relu(self.a(x)))


def planted_job(depth_run, tmp_path, **options):
    from edgekd.export.job import ExportOptions, load_job

    o = ExportOptions(calib_size=4, eval_size=4, sensitivity_size=4, sensitivity_units=8, calib_method="minmax", **options)
    job = load_job(depth_run, o, log=lambda line: None)
    job.run_dir, job.model = tmp_path, Gated(job.model).eval()
    return job


def test_planted_node_ranked_first_and_fallback_keeps_it_in_float(depth_run, tmp_path):
    from edgekd.export import export

    rep = export(planted_job(depth_run, tmp_path, max_drop=0.01), "onnx", "int8")["int8"]
    sens, fb = rep["sensitivity"], rep["fallback"]
    assert sens["units"][0]["nodes"] == ["/m/p/Conv"] and sens["units"][0]["output_error"] > 0.5  # the gate collapses: error ~1
    assert sens["units"][0]["output_error"] > 100 * sens["units"][1]["output_error"]
    assert fb["drop_all_int8"] > 0.01 and fb["met"] and rep["pass"] and rep["drop"] <= 0.01
    assert rep["float_nodes"] == ["/m/p/Conv"] and len(fb["steps"]) == 1
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "model.int8.onnx")).metadata_props}
    assert json.loads(meta["int8_float_nodes"]) == ["/m/p/Conv"] and float(meta["int8_drop"]) == pytest.approx(rep["drop"], abs=1e-5)
    assert set(rep["latency_p50_ms"]) == {"fp32", "int8_all", "int8"}
    kept = (tmp_path / "model.int8.onnx").read_bytes()
    from edgekd.report.page import _int8_blocks  # edgekd report draws the table from export.json

    blocks, made = _int8_blocks(tmp_path)
    assert made[0].name == "int8_sensitivity.png" and made[0].stat().st_size > 0 and "1 node(s) kept in float" in blocks[1][1]

    # No float node allowed: the budget cannot be met -> exit 2 (EdgekdError), the good file left as it was.
    with pytest.raises(EdgekdError, match=r"exceeds --max-drop 0.01 \(no float fallback: --max-float-nodes 0; the most sensitive is /m/p"):
        export(planted_job(depth_run, tmp_path, max_drop=0.01, max_float_nodes=0), "onnx", "int8")
    assert (tmp_path / "model.int8.onnx").read_bytes() == kept and (tmp_path / "model.int8.failed.onnx").exists()
    rec = json.loads((tmp_path / "export.json").read_text())["int8"]
    assert not rec["pass"] and rec["sensitivity"]["units"][0]["nodes"] == ["/m/p/Conv"]

    # The user's own exclusion does the same without any search.
    rep = export(planted_job(depth_run, tmp_path, max_drop=0.01, max_float_nodes=0, exclude_nodes=("/m/p/Conv",)), "onnx", "int8")["int8"]
    assert rep["pass"] and rep["float_nodes"] == ["/m/p/Conv"] and "fallback" not in rep and "sensitivity" not in rep


def test_cached_ranges_give_the_file_a_fresh_quantize_static_gives(depth_onnx, tmp_path):
    """Variants reuse one calibration: a variant must equal a fresh quantize_static (recalibrated) with the same exclusions."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from edgekd.export.onnx_export import ort_session
    from edgekd.export.quantize import Int8Quantiser, _float_outputs, _Reader

    rng = np.random.default_rng(0)
    calib = rng.standard_normal((3, 3, 64, 64)).astype(np.float32)
    with Int8Quantiser(depth_onnx, tmp_path, calib, symmetric=False, method="minmax") as q:
        q.write(tmp_path / "all.onnx")
        drop = [q.nodes[0][0], q.nodes[5][0]]
        q.write(tmp_path / "cached.onnx", float_nodes=drop)
        from onnxruntime.quantization import CalibrationDataReader

        class Reader(_Reader, CalibrationDataReader):
            pass

        quantize_static(q.pre, str(tmp_path / "fresh.onnx"), Reader(calib), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                        nodes_to_exclude=[*q.head, *drop], extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
        _float_outputs(tmp_path / "fresh.onnx", drop)  # what write() does after quantize_static (see its docstring)
    x = calib[:2]
    outs = {n: ort_session(tmp_path / f"{n}.onnx").run(None, {"input": x})[0] for n in ("all", "cached", "fresh")}
    np.testing.assert_array_equal(outs["cached"], outs["fresh"])
    assert not np.array_equal(outs["cached"], outs["all"])  # the exclusion did change the graph


def test_units_group_by_block_when_nodes_are_many():
    from edgekd.export.int8_sensitivity import units_of

    nodes = [(f"/m/encoder/blocks.{b}/conv{i}/Conv", "Conv") for b in range(3) for i in range(4)] + [("/m/head/Conv", "Conv")]
    assert len(units_of(nodes, 13)) == 13  # few enough: one node each
    units = units_of(nodes, 5)
    assert [u["unit"] for u in units] == ["/m/encoder/blocks.0", "/m/encoder/blocks.1", "/m/encoder/blocks.2", "/m/head"]
    assert units[0]["nodes"] == [f"/m/encoder/blocks.0/conv{i}/Conv" for i in range(4)] and units[0]["ops"] == "Convx4"


def test_unknown_exclude_node_is_one_line(depth_run):
    res = run_cli(["export", depth_run, "--precision", "int8", "--calib-size", "2", "--eval-size", "2", "--exclude-nodes", "/no/such/Conv"],
                  expect=2)
    assert "--exclude-nodes: '/no/such/Conv' is not a node of mobilenetv2_100's graph" in res.output and "Traceback" not in res.output


def test_bad_sensitivity_options_are_refused(depth_run):
    res = run_cli(["export", depth_run, "--precision", "int8", "--max-float-nodes", "-1"], expect=2)
    assert "--max-float-nodes" in res.output
