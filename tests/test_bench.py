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
    res = run_cli(["bench", depth_onnx, "--profile", "jetson", "--batch", "2", "--json", out, *FAST], expect=2)
    # the jetson profile trains at 256x320: a 64x64 model does not match it
    assert "expects 256x320" in res.output
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
