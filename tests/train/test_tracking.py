"""edgekd distill --log tensorboard: the run's logs mirrored into TensorBoard, imported only when asked for."""

import json
import subprocess
import sys

import pytest

from conftest import TINY, run_cli


def _scalars(logdir) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_mirrors_metrics_and_steps(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install tensorboard)")
    out = tmp_path / "run"
    run_cli(["distill", "--task", "depth", "--teacher", "none", *TINY, "--epochs", "2", "--log", "tensorboard", "--out", out])
    got = _scalars(out / "tensorboard")
    steps = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    epochs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [s for s, _ in got["step/total"]] == [r["step"] for r in steps]
    assert [v for _, v in got["step/total"]] == pytest.approx([r["total"] for r in steps], rel=1e-6)
    assert [v for _, v in got["epoch/d1"]] == pytest.approx([r["d1"] for r in epochs if "d1" in r], rel=1e-6)
    assert [s for s, _ in got["epoch/d1"]] == [r["step"] for r in epochs if "d1" in r]
    # a resumed run continues the same scalars, each step once (as steps.jsonl holds it once)
    run_cli(["distill", "--task", "depth", "--teacher", "none", *TINY, "--epochs", "3", "--log", "tensorboard", "--out", out, "--resume"])
    got = _scalars(out / "tensorboard")
    steps = [json.loads(line) for line in (out / "steps.jsonl").read_text().splitlines()]
    assert sorted(s for s, _ in got["step/total"]) == [r["step"] for r in steps] and len(steps) == 6


def test_tensorboard_missing_is_one_line(tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    err = run_cli(["distill", "--task", "depth", "--teacher", "none", *TINY, "--log", "tensorboard", "--out", tmp_path / "r"],
                  expect=2).stderr
    assert "pip install tensorboard" in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


def test_cli_imports_no_tracker():
    code = "import sys, edgekd.cli; bad = [m for m in ('tensorboard', 'torch', 'pynvml', 'psutil') if m in sys.modules]; assert not bad, bad"
    subprocess.run([sys.executable, "-c", code], check=True)
