"""benchmarks/claims/claims_gpu.sh: the paper-scale depth grid packed on one GPU, checked at toy size on the CPU."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "benchmarks" / "claims" / "claims_gpu_run.py"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}


def _py(*args):
    return subprocess.run([sys.executable, str(RUNNER), *map(str, args)], env=ENV, capture_output=True, text=True, check=True).stdout


def test_the_plan_is_the_paper_recipe_seed_major_and_resumable(tmp_path):
    grid = tmp_path / "grid"
    _py("plan", grid, "--data", tmp_path / "scenes", "--teacher-ckpt", tmp_path / "teacher-depth" / "best.pt", "--seeds", 2)
    meta = json.loads((grid / "compare.json").read_text())
    cfg = meta["config"]
    assert cfg["data"]["image_size"] == [256, 320] and (cfg["train"]["train_size"], cfg["train"]["val_size"]) == (795, 654)
    assert cfg["train"]["epochs"] == 25 and cfg["train"]["device"] == "cuda" and meta["seeds"] == [0, 1]
    todo = [tuple(line.split()) for line in _py("todo", grid, 2).splitlines()]
    assert todo[:6] == [(c, "0") for c in ("none", "random-fitnet-inverted", "none-r2", "teacher-depth-fitnet-traditional",
                                           "teacher-depth-fitnet-inverted", "random-fitnet-traditional")]
    assert len(todo) == 12 and {s for _, s in todo[6:]} == {"1"}
    spectral = next(c for c in meta["cells"] if c["id"] == "none-r2")
    assert spectral["set"] == {"grad_ratio": 0.1}
    done = grid / "runs" / "none" / "seed0"
    done.mkdir(parents=True)
    (done / "summary.json").write_text("{}")
    assert ("none", "0") not in [tuple(line.split()) for line in _py("todo", grid, 2).splitlines()]


@pytest.mark.slow
def test_toy_grid_runs_end_to_end_and_a_rerun_skips_what_finished(tmp_path):
    env = {**ENV, "TOY": "1"}
    cmd = ["bash", str(ROOT / "benchmarks" / "claims" / "claims_gpu.sh"), str(tmp_path / "work")]
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=1200)
    progress = (tmp_path / "work" / "grid" / "progress.jsonl").read_text().splitlines()
    assert len(progress) == 6 and all(json.loads(p)["commit"] for p in progress)
    verdicts = (tmp_path / "work" / "verdicts" / "verdicts.md").read_text()
    assert "2. same-task teacher" in verdicts and "3. random teacher" in verdicts
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=600)
    assert len((tmp_path / "work" / "grid" / "progress.jsonl").read_text().splitlines()) == 6  # nothing ran twice
