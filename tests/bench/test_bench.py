"""edgekd bench: statistics, accuracy next to the reference, JSON, and no torch on the device."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import run_cli
from edgekd.bench.stats import latency_stats

FAST = ["--min-iters", "5", "--min-time", "0", "--warmup-iters", "1", "--warmup-time", "0", "--val-size", "4", "--quiet"]


def test_latency_stats():
    s = latency_stats([0.001, 0.002, 0.003, 0.004], batch=2)
    assert s["min_ms"] == pytest.approx(1) and s["max_ms"] == pytest.approx(4) and s["p50_ms"] == pytest.approx(2.5)
    assert s["mean_ms"] == pytest.approx(2.5) and s["throughput_ips"] == pytest.approx(800)
    assert s["cv"] == pytest.approx(np.std([1, 2, 3, 4]) / 2.5)


def test_bench_onnx_table_and_json(depth_onnx, tmp_path):
    out = tmp_path / "b.json"
    res = run_cli(["bench", depth_onnx, "--batch", "2", "--json", out, *FAST])
    r = json.loads(out.read_text())
    b1 = r["latency"]["batch1"]
    assert b1["iters"] >= 5 and b1["min_ms"] <= b1["p50_ms"] <= b1["p90_ms"] <= b1["p99_ms"] <= b1["max_ms"]
    assert r["latency"]["batch2"]["batch"] == 2
    assert "compute" in b1["stages_p50_ms"] and "preprocess" in b1["stages_p50_ms"]
    acc = r["accuracy"]
    assert acc["images"] == 4 and acc["primary_metric"] == "d1"
    # same data, same fp32 graph: the reference is reproduced
    assert acc["metrics"]["d1"] == pytest.approx(acc["reference_fp32"]["d1"], abs=1e-6)
    env = r["environment"]
    assert env["cores"] and env["threads"] and env["onnxruntime"] and "CPUExecutionProvider" in env["providers"]
    assert r["budget"]["target"] == "jetson-orin-nano"
    # a CPU (and, here, x86) machine is not a Jetson's GPU: the budget gets no verdict
    assert r["budget"]["on_target"] is False and r["budget"]["pass"] is None
    assert "not on target: no verdict" in res.output and "PASS" not in res.output
    # auto fell back from the target's runtimes: said in one line
    assert "backend auto: ort-tensorrt, ort-cuda not available on this machine; using ort-cpu" in res.output
    assert "p90" in res.output and "img/s" in res.output


NO_TORCH = textwrap.dedent("""
    import sys
    class _Block:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch.") or name in ("timm", "torchvision"):
                raise ImportError("torch is not installed on this device")
    sys.meta_path.insert(0, _Block())
    from edgekd.cli import main
    sys.argv = ["edgekd"] + sys.argv[1:]
    main()
""")


@pytest.mark.parametrize("data", ["synthetic", "folder"])
def test_bench_needs_no_torch(depth_onnx, tmp_path, data):
    script = tmp_path / "no_torch.py"
    script.write_text(NO_TORCH)
    args = [sys.executable, str(script), "bench", str(depth_onnx), "--json", str(tmp_path / "r.json"), *FAST]
    if data == "folder":
        run_cli(["data", "synth", "--out", tmp_path / "scenes", "--n", "4", "--val-n", "4", "--image-size", "64", "64"])
        args += ["--data", str(tmp_path / "scenes")]
    p = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["accuracy"]["images"] == 4 and r["latency"]["batch1"]["iters"] >= 5
    # the blocker really blocks: asking for the torch backend fails cleanly
    p = subprocess.run([sys.executable, str(script), "bench", str(depth_onnx.parent / "best.pt"), *FAST],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and "needs PyTorch" in p.stderr and "Traceback" not in p.stderr


def test_bench_torch_reference(depth_run):
    res = run_cli(["bench", depth_run / "best.pt", *FAST])
    assert "torch" in res.output


def test_bench_at_the_models_size_under_another_profile(depth_onnx, tmp_path):
    """A 64x64 model benched with --profile mobile (192x256): timed at its own size, the profile's target used."""
    out = tmp_path / "m.json"
    res = run_cli(["bench", depth_onnx, "--profile", "mobile", "--json", out, *FAST])
    assert "takes 3x64x64 input (profile mobile trains at 192x256); timing it at its own size" in res.output
    r = json.loads(out.read_text())
    assert r["input"] == [3, 64, 64] and r["environment"]["target"] == "android-arm64"
    assert r["settings"]["min_iters"] == 5


def _target(tmp_path, budget_ms):
    import platform

    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine().lower())
    f = tmp_path / f"here-{budget_ms}.toml"
    f.write_text(f'name = "here"\narch = "{arch}"\naccelerator = "cpu"\nproviders = ["CPUExecutionProvider"]\n'
                 f"latency_budget_ms = {budget_ms}\n")
    return f


@pytest.mark.parametrize("budget,verdict", [(1e6, "PASS"), (1e-6, "FAIL")])
def test_budget_verdict_only_on_target(depth_onnx, tmp_path, budget, verdict):
    out = tmp_path / "b.json"
    res = run_cli(["bench", depth_onnx, "--target", _target(tmp_path, budget), "--no-accuracy", "--json", out, *FAST])
    r = json.loads(out.read_text())
    assert r["budget"]["on_target"] is True and r["budget"]["pass"] is (verdict == "PASS")
    assert f"-> {verdict}" in res.output and "backend auto" not in res.output
    assert ("latency budget of here missed" in res.stderr) is (verdict == "FAIL")


def _third_party_onnx(path, shape):
    import onnx
    from onnx import TensorProto, helper

    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], np.random.default_rng(0).standard_normal(108).tolist())
    g = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["y"], ["z"])],
                          "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)], initializer=[w])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_bench_times_any_onnx_with_no_accuracy(tmp_path):
    f = _third_party_onnx(tmp_path / "third.onnx", ["N", 3, "H", "W"])
    res = run_cli(["bench", f], expect=2)
    assert "carries no edgekd metadata" in res.stderr and "--no-accuracy" in res.stderr
    out = tmp_path / "t.json"
    res = run_cli(["bench", f, "--no-accuracy", "--json", out, *FAST])
    r = json.loads(out.read_text())
    assert r["task"] is None and r["input"] == [3, 224, 224] and r["latency"]["batch1"]["iters"] >= 5
    assert "dynamic image size; timing it at 224x224" in res.output and "latency only" in res.output
    fixed = _third_party_onnx(tmp_path / "fixed.onnx", [2, 3, 32, 48])
    run_cli(["bench", fixed, "--no-accuracy", "--json", out, *FAST])
    r = json.loads(out.read_text())
    assert list(r["latency"]) == ["batch2"] and r["input"] == [3, 32, 48]


def test_device_without_the_training_data_is_told_about_no_accuracy(depth_onnx, tmp_path):
    res = run_cli(["bench", depth_onnx, "--data", tmp_path / "absent", *FAST], expect=2)
    assert "does not exist" in res.stderr and "--no-accuracy" in res.stderr
    res = run_cli(["bench", depth_onnx, "--data", tmp_path / "absent", "--no-accuracy", *FAST])
    assert "not available here; timing on a synthetic scene" in res.output and "p90" in res.output


def test_progress_bar_ends_at_the_real_count(depth_onnx, capsys, monkeypatch):
    import sys

    from edgekd.bench.run import timed_loop

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # bars are drawn on a terminal only
    from edgekd.bench.runners import create_runner

    runner = create_runner("ort-cpu", depth_onnx, threads=1).open()
    x = np.zeros((1, 3, 64, 64), np.float32)
    # one iteration is at least required, half a second of them too: the time decides the count
    lat, _ = timed_loop(runner, x, warmup_iters=1, warmup_time=0, min_iters=1, min_time=0.5, desc="t", show=True)
    err = capsys.readouterr().err
    assert len(lat) > 1 and f"{len(lat)}/{len(lat)}" in err


def test_no_bar_in_a_redirected_log(depth_onnx, capsys):
    from edgekd.bench.run import timed_loop
    from edgekd.bench.runners import create_runner

    x = np.zeros((1, 3, 64, 64), np.float32)
    timed_loop(create_runner("ort-cpu", depth_onnx, threads=1).open(), x, warmup_iters=1, warmup_time=0, min_iters=3, min_time=0, desc="t", show=True)
    assert "\r" not in capsys.readouterr().err


def test_s8s8_int8_on_an_x86_cpu_is_explained():
    from edgekd.bench.run import _notes

    r = {"precision": "int8", "environment": {"backend": "ort-cpu", "arch": "x86_64"}}
    assert "s8s8" in _notes(r, {"target": "jetson-orin-nano"})[0]
    assert _notes(r, {"target": "android-arm64"}) == []  # a CPU target's export is u8s8
    assert _notes({**r, "precision": "fp32"}, {"target": "jetson-orin-nano"}) == []
