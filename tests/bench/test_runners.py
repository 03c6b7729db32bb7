"""Bench runners: the registry, the open/infer/close protocol, and every ONNX backend's parity with ONNX Runtime CPU."""

import json
import sys

import numpy as np
import pytest

from conftest import run_cli
from edgekd.bench.runners import auto_backend, backend_class, create_runner, list_backends, unavailable
from edgekd.config import key_choices, load_target
from edgekd.errors import EdgekdError

FAST = ["--min-iters", "5", "--min-time", "0", "--warmup-iters", "1", "--warmup-time", "0", "--val-size", "4", "--quiet"]


def test_registry_names_and_errors():
    names = list_backends()
    assert {"ort-cpu", "ort-cuda", "ort-xnnpack", "openvino", "tensorrt", "torch"} <= set(names)
    assert list_backends("engine") == ["tensorrt"] and list_backends("torch") == ["torch"]
    assert set(key_choices("bench", "backend")) == {"auto", *list_backends(aliases=True)}  # config validation reads the registry
    assert backend_class("onnxruntime").name == "ort-cpu"
    with pytest.raises(EdgekdError, match="unknown backend 'ort-gpu'; use one of: auto, ort-cpu"):
        create_runner("ort-gpu", "m.onnx")
    for n in names:  # every backend says in one line why it cannot run, or nothing
        why = unavailable(n)
        assert why is None or (isinstance(why, str) and "\n" not in why)


def test_auto_follows_the_target():
    if unavailable("ort-cuda") and unavailable("ort-tensorrt"):  # a CPU-only machine
        # the Jetson lists no OpenVINO: ONNX Runtime CPU; the x86 server prefers OpenVINO when installed
        assert auto_backend("onnx", load_target("jetson-orin-nano")) == "ort-cpu"
        server = auto_backend("onnx", load_target("x86-server"))
        assert server == ("openvino" if unavailable("openvino") is None else "ort-cpu")
    assert auto_backend("engine", None) == "tensorrt" and auto_backend("torch", None) == "torch"


def _x(path, n=2):
    with create_runner("ort-cpu", path) as r:
        h, w = r.input_shape()[2:]
    return np.random.default_rng(0).standard_normal((n, 3, h, w)).astype(np.float32)


def test_runner_is_a_context_manager(depth_onnx):
    r = create_runner("ort-cpu", depth_onnx, threads=1)
    assert not r.is_open
    with r:
        out, timing = r.infer(_x(depth_onnx))
        assert r.is_open and out.shape[0] == 2 and timing["compute"] > 0
        assert r.metadata()["task"] == "depth" and r.describe()["backend"] == "ort-cpu"
    assert not r.is_open


@pytest.mark.parametrize("name", [n for n in list_backends("onnx") if n != "ort-cpu"])
def test_onnx_backend_parity_with_onnxruntime(depth_onnx, name):
    why = unavailable(name)
    if why:
        pytest.skip(why)
    x = _x(depth_onnx)
    with create_runner("ort-cpu", depth_onnx, threads=1) as ref, create_runner(name, depth_onnx, threads=1) as r:
        want, got = ref.infer(x)[0], r.infer(x)[0]
        assert r.metadata() == ref.metadata()  # the same edgekd metadata reaches the bench
        assert r.input_shape()[1:] == ref.input_shape()[1:]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3 * float(np.abs(want).max()))


def test_bench_openvino_accuracy_matches_reference(depth_onnx, tmp_path):
    pytest.importorskip("openvino", reason="OpenVINO is not installed (pip install openvino)")
    out = tmp_path / "ov.json"
    run_cli(["bench", depth_onnx, "--backend", "openvino", "--json", out, *FAST])
    r = json.loads(out.read_text())
    assert r["environment"]["backend"] == "openvino" and r["environment"]["runtime"].startswith("openvino")
    acc = r["accuracy"]
    assert acc["metrics"]["d1"] == pytest.approx(acc["reference_fp32"]["d1"], abs=0.02)


def test_openvino_absent_is_one_line(depth_onnx, monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino now raises ImportError
    assert "pip install openvino" in unavailable("openvino")
    res = run_cli(["bench", depth_onnx, "--backend", "openvino", *FAST], expect=2)
    assert "OpenVINO is not installed" in res.output and "Traceback" not in res.output


def test_the_base_class_owns_the_open_state():
    from edgekd.bench.runners import BaseRunner

    class Counting(BaseRunner):  # a runner of nothing: counts what the template calls
        opened = closed = 0

        def open_impl(self):
            self.opened += 1

        def close_impl(self):
            self.closed += 1

    r = Counting("m.onnx")
    assert r.open() is r and r.open() is r and r.opened == 1 and r.is_open  # opened once
    r.close()
    r.close()
    assert r.closed == 1 and not r.is_open  # a closed runner is not closed again
    with r:
        assert r.is_open and r.opened == 2
    assert not r.is_open and r.closed == 2


@pytest.mark.parametrize("name", list_backends())
def test_every_backend_names_the_files_it_opens(name):
    from edgekd.bench.runners import kind_of_suffix

    cls = backend_class(name)
    assert cls.suffixes and all(s.startswith(".") and s == s.lower() for s in cls.suffixes)
    assert all(kind_of_suffix(s) == cls.model_kind for s in cls.suffixes)  # no suffix claimed by two kinds
    from edgekd.bench.runners import BaseRunner

    assert cls.file_noun and (cls.open_impl is not BaseRunner.open_impl or cls.open is not BaseRunner.open)  # it loads a model


def test_onnxruntime_describes_the_input(depth_onnx):
    with create_runner("ort-cpu", depth_onnx) as r:
        (spec,) = r.input_spec()
        assert spec.dtype == "float32" and spec.runtime_type == "tensor(float)"
        assert list(spec.shape) == r.input_shape() and spec.shape[1] == 3
