"""Ctrl-C and SIGTERM keep the work (issue 25): a real process, a real signal; the checkpoint holds the step reached,
the message names it, the exit code is 128 + the signal, and --resume continues from there."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import run_cli, tiny

RUN = ["distill", "--task", "depth", "--teacher", "none", "--student-weights", "none", *tiny(epochs=40, train=16, val=4)]


def _start(out, *extra):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "edgekd", *RUN, *extra, "--out", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_steps(p, out, n, timeout=300):
    """Block until ``out/steps.jsonl`` holds ``n`` steps (the run is then training)."""
    steps = out / "steps.jsonl"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if steps.exists() and len(steps.read_text().splitlines()) >= n:
            return
        if p.poll() is not None:
            pytest.fail(f"the run ended before the signal: {p.stderr.read()}")
        time.sleep(0.02)
    pytest.fail("the run did not reach its steps in time")


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), pytest.param(signal.SIGINT, 130, marks=pytest.mark.slow)])
def test_a_signal_saves_the_step_reached_and_resume_continues(tmp_path, sig, code):
    out = tmp_path / "run"
    p = _start(out)  # the default --save-every-min 10: without the signal handling last.pt would hold step 1
    wait_for_steps(p, out, 6)
    p.send_signal(sig)
    _, err = p.communicate(timeout=120)
    assert p.returncode == code, err
    lines = err.strip().splitlines()
    found = re.search(r"after step (\d+) of 160: (\S+) holds step (\d+); continue with: edgekd distill --resume --out", lines[-1])
    assert found, err
    assert "Traceback" not in err
    step = int(found.group(1))
    assert step >= 6 and int(found.group(3)) == step and found.group(2) == str(out / "last.pt")
    assert torch.load(out / "last.pt", weights_only=True)["step"] == step
    logged = [json.loads(x)["step"] for x in (out / "steps.jsonl").read_text().splitlines()]
    assert logged == list(range(1, step + 1))  # every step done is logged, none twice
    # --resume continues from that step (a shorter --epochs keeps the test short)
    epochs = step // 4 + 1
    run_cli(["distill", "--resume", "--epochs", str(epochs), "--out", out, "--quiet"])
    logged = [json.loads(x)["step"] for x in (out / "steps.jsonl").read_text().splitlines()]
    assert logged == list(range(1, epochs * 4 + 1))
    assert torch.load(out / "last.pt", weights_only=True)["step"] == epochs * 4


@pytest.mark.slow
def test_sigterm_before_training_is_reported_not_silent(tmp_path):
    """SIGTERM while the scenes are still being prepared: one line, exit 143 (not a silent death)."""
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.Popen([sys.executable, "-c", "import sys, time, edgekd.train.loop as l, edgekd.cli as c;"
                          "l.Trainer.run = lambda self: (print('ready', flush=True), time.sleep(60));"
                          "sys.argv = ['edgekd', *sys.argv[1:]]; c.main()", *RUN, "--out", str(out)],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143 and "stopped by SIGTERM before the first checkpoint" in err, err
