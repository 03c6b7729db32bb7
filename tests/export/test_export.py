"""edgekd export: ONNX with metadata and parity, fp16, INT8 QDQ, TensorRT (skipped without it)."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from conftest import run_cli


def test_onnx_export_checks_and_metadata(depth_onnx):
    m = onnx.load(str(depth_onnx))
    onnx.checker.check_model(m, full_check=True)
    assert not list(depth_onnx.parent.glob("*.data"))  # weights inline
    meta = {p.key: p.value for p in m.metadata_props}
    assert meta["task"] == "depth" and meta["layout"] == "NCHW"
    assert json.loads(meta["input_shape"]) == [-1, 3, 64, 64]
    assert json.loads(meta["normalisation"])["mean"] == pytest.approx([0.485, 0.456, 0.406])
    assert json.loads(meta["output_range"])[1] == 10.0
    assert "d1" in json.loads(meta["reference_metrics"])
    assert meta["edgekd_version"]
    assert next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")) == 17
    # only the student: no projector or teacher in the graph
    names = " ".join(i.name for i in m.graph.initializer)
    assert "projector" not in names and "teacher" not in names


def test_onnx_dynamic_batch_runs(depth_onnx):
    s = ort.InferenceSession(str(depth_onnx), providers=["CPUExecutionProvider"])
    for b in (1, 3):
        out = s.run(None, {"input": np.zeros((b, 3, 64, 64), np.float32)})[0]
        assert out.shape == (b, 1, 64, 64)


def test_parity_report(depth_onnx):
    rep = json.loads((depth_onnx.parent / "export.json").read_text())
    p = rep["fp32"]["parity"]
    assert p["pass"] and p["max_abs_err"] < 1e-3 and p["images"] >= 4


def test_parity_failure_exits_2_but_keeps_the_file(depth_run):
    res = run_cli(["export", depth_run, "--atol", "0", "--rtol", "0"], expect=2)
    assert "parity" in res.output and (depth_run / "model.failed.onnx").exists()  # kept for inspection, beside model.onnx


def test_fp16_and_int8(depth_run):
    res = run_cli(["export", depth_run, "--precision", "int8", "--calib-size", "4", "--eval-size", "4", "--max-drop", "1.0"])
    assert "drop" in res.output
    rep = json.loads((depth_run / "export.json").read_text())["int8"]
    m = onnx.load(str(depth_run / "model.int8.onnx"))
    ops = {n.op_type for n in m.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert rep["pass"] and rep["eval_images"] == 4 and "d1" in rep["int8_metrics"]
    assert rep["float_nodes"] == [] and "sensitivity" not in rep  # within budget: nothing measured, nothing kept in float
    assert {p.key: p.value for p in m.metadata_props}["precision"] == "int8"  # not the fp32 file's label (issue 14)
    run_cli(["export", depth_run, "--precision", "fp16"])
    arts = json.loads((depth_run / "export.json").read_text())["artefacts"]  # the INT8 record survives the fp16 export
    assert {"model.onnx", "model.int8.onnx", "model.fp16.onnx"} <= set(arts) and arts["model.int8.onnx"]["drop"] == rep["drop"]
    m16 = onnx.load(str(depth_run / "model.fp16.onnx"))
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in m16.graph.initializer)
    assert m16.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # fp32 I/O


def test_int8_max_drop_is_enforced(depth_run):
    res = run_cli(["export", depth_run, "--precision", "int8", "--calib-size", "2", "--eval-size", "4", "--max-drop", "-1"], expect=2)
    assert "exceeds --max-drop" in res.output


def _has_tensorrt():
    try:
        import tensorrt  # noqa: F401
        return True
    except Exception:
        return False


@pytest.mark.skipif(_has_tensorrt(), reason="TensorRT is installed: the missing-TensorRT message cannot be shown")
def test_tensorrt_missing_is_one_clear_line(depth_run):
    (depth_run / "model.onnx").unlink(missing_ok=True)
    res = run_cli(["export", depth_run, "--format", "tensorrt"], expect=2)
    assert "TensorRT is not available" in res.output and (depth_run / "model.onnx").exists()


@pytest.mark.skipif(not _has_tensorrt(), reason="TensorRT is not installed (it cannot be installed on this machine; JetPack ships it)")
def test_tensorrt_engine_build(depth_run):
    run_cli(["export", depth_run, "--format", "tensorrt", "--precision", "fp16"])
    assert (depth_run / "model.fp16.engine").exists() and (depth_run / "model.fp16.engine.json").exists()


# ----------------------------------------------------------------- the format and precision registries
from edgekd.export.formats import create_format, create_precision, list_formats, list_precisions  # noqa: E402


def _cli_choices(param):
    from edgekd.cli import cli

    return list(next(p for p in cli.commands["export"].params if p.name == param).type.choices)


@pytest.mark.parametrize("name", list_formats())
def test_format_registry(name):
    from edgekd.config import key_choices

    step = create_format(name).resolve()  # the step imports (its runtime only when it runs)
    assert step is None or callable(step)
    assert name in key_choices("export", "format") and name in _cli_choices("fmt")


@pytest.mark.parametrize("name", list_precisions())
def test_precision_registry(name):
    from edgekd.config import key_choices

    step = create_precision(name).resolve()
    assert step is None or callable(step)
    assert name in key_choices("export", "precision") and name in _cli_choices("precision")


def test_unknown_format_and_precision_name_the_valid_ones():
    from edgekd.errors import EdgekdError

    with pytest.raises(EdgekdError, match=r"unknown export format 'coreml'; use one of: onnx, tensorrt, litert$"):
        create_format("coreml")
    assert create_format("tflite").name == "litert"  # an alias
    with pytest.raises(EdgekdError, match=r"unknown precision 'int4'; use one of: fp32, fp16, int8$"):
        create_precision("int4")


def test_export_follows_the_profiles_format(depth_run, tmp_path, monkeypatch):
    """export.format (validated in the profile) is the default of --format; a registered format's step runs on it."""
    from edgekd.export import formats
    from edgekd.fileio import load_checkpoint, save_checkpoint

    run = tmp_path / "run"
    run.mkdir()
    ckpt = load_checkpoint(depth_run / "best.pt")
    ckpt["config"]["export"].update(format="probe", precision="fp32")
    save_checkpoint(run / "best.pt", ckpt)
    seen = _PROBE_CALLS
    seen.clear()
    monkeypatch.setitem(formats._FORMATS, "probe", formats.ExportStep("probe", "a test format", f"{__name__}:_probe_step"))
    run_cli(["export", run])
    assert seen == [run / "model.onnx"]
    assert json.loads((run / "export.json").read_text())["format"] == "probe"
    run_cli(["export", run, "--format", "onnx"])  # the option still wins
    assert len(seen) == 1 and json.loads((run / "export.json").read_text())["format"] == "onnx"


_PROBE_CALLS: list = []


def _probe_step(job, source):
    _PROBE_CALLS.append(source)
