"""The first minute of a new user (issue 25): mistakes are refused before any scene is rendered or model built, all at
once; the GPU-recipe warning comes before the work with an estimate; a torch/torchvision mismatch is named as such."""

import builtins

import pytest

from conftest import TINY, run_cli
from edgekd.errors import EdgekdError

D = ["distill", "--task", "depth", "--teacher", "none", *TINY]


@pytest.fixture
def no_rendering(monkeypatch):
    """Any scene rendered (or a dataset prerendered) fails the test: the refusal must come first."""
    from edgekd.data import rendered_scenes

    def boom(*a, **k):
        raise AssertionError("a scene was rendered before the mistake was reported")

    monkeypatch.setattr(rendered_scenes, "render_scene", boom)
    monkeypatch.setattr(rendered_scenes.SyntheticScenes, "prerender", boom)


def test_a_typo_in_the_student_is_refused_before_rendering_with_the_close_name(tmp_path, no_rendering):
    res = run_cli(["distill", "--profile", "mobile", "--task", "depth", "--student", "mobilenetv2_10", "--out", tmp_path / "r"], expect=2)
    assert res.stderr.startswith("error: unknown student model 'mobilenetv2_10'; did you mean mobilenetv2_100")
    assert len(res.stderr.strip().splitlines()) == 1  # nothing more about a model that does not exist
    assert not (tmp_path / "r").exists()


def test_every_mistake_is_reported_at_once_one_line_each(tmp_path, no_rendering):
    args = [*D, "--student", "no_such_net", "--data", tmp_path / "nowhere", "--out", tmp_path / "file" / "run"]
    (tmp_path / "file").write_text("a file in the way")
    res = run_cli([*args, "--lr", "100"], expect=2)  # a refused recipe: the options' files are still checked
    lines = res.stderr.strip().splitlines()
    assert any("--lr = 100.0 is out of range" in x for x in lines) and any("does not exist" in x for x in lines), lines
    res = run_cli(args, expect=2)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 3 and all(x.startswith("error: ") for x in lines), lines
    assert "unknown student model 'no_such_net'" in lines[0]
    assert any("data path" in x for x in lines) and any("not writable" in x for x in lines)


def test_image_size_and_teacher_names_are_checked_before_rendering(tmp_path, no_rendering):
    res = run_cli([*D[:3], "--teacher", "random:resnet1", *TINY, "--image-size", "60", "64", "--out", tmp_path / "r"], expect=2)
    lines = res.stderr.strip().splitlines()
    assert any("unknown teacher model 'resnet1'; did you mean resnet18" in x for x in lines), lines
    assert any("image size 60x64 is not divisible by the stride 32" in x for x in lines), lines


def test_gpu_recipe_warning_comes_before_rendering_with_steps_and_an_estimate(tmp_path, monkeypatch):
    from edgekd.data import rendered_scenes

    def stop(*a, **k):
        raise EdgekdError("stopped where rendering would start")

    monkeypatch.setattr(rendered_scenes.SyntheticScenes, "prerender", stop)
    res = run_cli(["distill", "--profile", "jetson", "--task", "depth", "--device", "cpu", "--quiet", "--out", tmp_path / "r"], expect=2)
    err = res.stderr.strip().splitlines()
    assert err[-1] == "error: stopped where rendering would start"
    warning = next(x for x in err if x.startswith("warning: this recipe"))
    assert "1225 steps of 16 images at 256x320" in warning and "expect about" in warning and "estimate" in warning


def test_cpu_estimate_scales_with_pixels_and_batch():
    from edgekd.config import load_profile
    from edgekd.preflight import cpu_estimate

    cfg = load_profile("jetson")
    full = cpu_estimate(cfg, 795)
    half = cpu_estimate(load_profile("jetson", {"data": {"image_size": [128, 160]}}), 795)
    assert full["steps"] == 1225 and full["train_s"] == pytest.approx(4 * half["train_s"])


def test_torch_torchvision_mismatch_is_named_instead_of_blaming_the_student(tmp_path, monkeypatch):
    """The environment of the issue: torch 2.13.0+cpu with PyPI's torchvision 0.28.0, whose operators do not load."""
    from edgekd import torch_stack

    real_import = builtins.__import__

    def broken_import(name, *args, **kwargs):
        if name == "timm":
            raise RuntimeError("operator torchvision::nms does not exist")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(torch_stack, "torch_version", lambda: "2.13.0+cpu")
    monkeypatch.setattr(torch_stack, "torchvision_version", lambda v: "0.28.0")
    monkeypatch.setattr(torch_stack, "probe_torchvision", lambda: "operator torchvision::nms does not exist")
    monkeypatch.setattr(builtins, "__import__", broken_import)
    res = run_cli([*D, "--out", tmp_path / "r"], expect=2)
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1 and "cannot be used as an encoder" not in err, err
    assert "torch 2.13.0+cpu and torchvision 0.28.0 do not match" in err
    assert "pip install --force-reinstall --no-deps torchvision==0.28.0 --index-url https://download.pytorch.org/whl/cpu" in err


def test_pairing_rule():
    from edgekd.torch_stack import pairing_problem

    assert pairing_problem("2.14.1+cu130", "0.29.1+cu130") is None
    assert pairing_problem("2.14.1", "0.29.1") is None
    p = pairing_problem("2.14.1+cpu", "0.28.0")
    assert "needs torchvision 0.29.1" in p and p.endswith("torchvision==0.29.1 --index-url https://download.pytorch.org/whl/cpu")


def test_doctor_lists_the_environment_and_its_problems(monkeypatch):
    from edgekd import doctor

    res = run_cli(["doctor"])
    for word in ("torch ", "torchvision", "timm", "onnxruntime providers", "CPUExecutionProvider", "openvino", "tensorrt",
                 "weights mobilenetv2_100", "torch/torchvision", "no problems found"):
        assert word in res.output, word
    monkeypatch.setattr(doctor, "stack_problem", lambda error=None: "torch 2.13.0+cpu and torchvision 0.28.0 do not match; fix: pip install X")
    res = run_cli(["doctor"], expect=1)
    assert "problem: torch 2.13.0+cpu and torchvision 0.28.0 do not match; fix: pip install X" in res.output


def test_bench_of_a_run_lands_in_the_run_and_the_report_shows_it(depth_run, depth_onnx, tmp_path):
    import json
    import shutil

    run = tmp_path / "run"
    shutil.copytree(depth_run, run)
    run_cli(["bench", run / "model.onnx", "--min-iters", "3", "--min-time", "0", "--warmup-iters", "1", "--warmup-time", "0",
             "--val-size", "2", "--quiet"])
    rec = json.loads((run / "bench" / "model.onnx.json").read_text())
    run_cli(["report", run])
    md = (run / "report" / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| fp32 | model.onnx |"))
    assert f"{rec['latency']['batch1']['p50_ms']:.2f}" in row and "no latency yet" not in md
    assert "| metric | validation | training scenes |" in md and "| d1 (primary) |" in md  # a table, not one long line
