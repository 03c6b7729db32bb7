"""Interrupted runs, atomic files, divergence, determinism (issue: reliability)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from conftest import run_cli, tiny

RUN = ["distill", "--task", "depth", "--teacher", "random:resnet18", "--spectral", "2", *tiny(epochs=2, train=16, val=4)]


def _weights(path):
    return torch.load(path, weights_only=True)["student"]


def _metrics(out):
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path):
    """Kill (SIGKILL) at step 5 of 8 while checkpointing every step, resume: same final weights and metrics.

    Tolerance: exact equality of every weight (CPU, same thread count, same data order)."""
    ref = tmp_path / "ref"
    run_cli([*RUN, "--out", ref])

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "edgekd", *RUN, "--save-every-min", "0", "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_at = 5
    deadline = time.time() + 240
    while time.time() < deadline:
        steps = out / "steps.jsonl"
        if steps.exists() and len(steps.read_text().splitlines()) >= kill_at:
            break
        if p.poll() is not None:
            pytest.fail("the run ended before it could be killed")
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait()
    ck = torch.load(out / "last.pt", weights_only=True)
    assert 1 <= ck["step"] < 8  # killed mid-run, a checkpoint of a finished step is there
    run_cli(["distill", "--resume", "--out", out, "--quiet"])
    a, b = _weights(ref / "last.pt"), _weights(out / "last.pt")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ma, mb = _metrics(ref)[-1], _metrics(out)[-1]
    assert ma["d1"] == mb["d1"] and ma["rmse"] == mb["rmse"] and ma["step"] == mb["step"] == 8


def test_same_seed_same_metrics(tmp_path):
    for name in ("a", "b"):
        run_cli(["distill", "--task", "segmentation", "--teacher", "random:resnet18", *tiny(), "--seed", "3", "--out", tmp_path / name])
    assert _metrics(tmp_path / "a") == _metrics(tmp_path / "b")


SLOW_WRITER = textwrap.dedent("""
    import sys, time
    from edgekd.fileio import atomic_write
    def write(f):
        f.write(b"new-" * 1000)
        f.flush()
        print("writing", flush=True)
        time.sleep(60)
        f.write(b"end")
    atomic_write(sys.argv[1], write)
""")


@pytest.mark.parametrize("name", ["last.pt", "model.onnx", "bench.json"])
def test_kill_during_write_keeps_the_previous_file(tmp_path, name):
    target = tmp_path / name
    if name.endswith(".pt"):
        torch.save({"step": 1}, target)
    else:
        target.write_bytes(b"previous version")
    before = target.read_bytes()
    script = tmp_path / "w.py"
    script.write_text(SLOW_WRITER)
    p = subprocess.Popen([sys.executable, str(script), str(target)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "writing"
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert target.read_bytes() == before
    if name.endswith(".pt"):
        assert torch.load(target, weights_only=True) == {"step": 1}


def test_nan_loss_stops_with_step_and_term(tmp_path, monkeypatch):
    from edgekd.tasks.depth import DepthTask

    out = tmp_path / "nan"
    calls = {"n": 0}
    real = DepthTask.loss

    def poisoned(self, pred, target):
        calls["n"] += 1
        loss = real(self, pred, target)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(DepthTask, "loss", poisoned)
    res = run_cli(["distill", "--task", "depth", "--teacher", "none", *tiny(epochs=2, train=8), "--save-every-min", "0",
                   "--out", out], expect=2)
    err = res.stderr
    assert "at step 3" in err and "term: task" in err and "lower --lr" in err
    ck = torch.load(out / "last.pt", weights_only=True)
    assert ck["step"] == 2  # the last good step is kept
    assert all(torch.isfinite(v).all() for v in ck["student"].values() if v.is_floating_point())


def test_data_order_and_augmentation_do_not_depend_on_workers(tmp_path):
    """Loader workers persist across epochs; augmentation still follows (seed, epoch, index)."""
    outs = []
    for w in ("0", "2"):
        out = tmp_path / f"w{w}"
        run_cli(["distill", "--task", "segmentation", "--teacher", "none", *tiny(epochs=2), "--workers", w, "--out", out])
        outs.append(out)
    a, b = _weights(outs[0] / "last.pt"), _weights(outs[1] / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
