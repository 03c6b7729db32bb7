"""Shared helpers: tiny runs (64x64 synthetic scenes, a couple of steps) through the real CLI."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Test modules share helpers by module name (test_bench's FAST, test_data_formats' tiny datasets, faultlib) as when
# they all lived in tests/: every folder of tests/ is importable, whichever file pytest collects first or alone.
sys.path[:0] = [str(d) for d in sorted(Path(__file__).parent.iterdir()) if d.is_dir() and d.name[0] not in "_."]

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ["EDGEKD_CACHE"] = "off"  # no scene cache under ~/.cache from tests; tests of the cache set their own folder

def tiny(epochs=1, train=8, val=4, batch=4):
    return ["--image-size", "64", "64", "--train-size", str(train), "--val-size", str(val), "--batch-size", str(batch),
            "--epochs", str(epochs), "--workers", "0", "--device", "cpu", "--quiet"]


TINY = tiny()
FAST_TEACHER = ["--teacher", "random:resnet18"]


def run_cli(args, expect=0):
    """Run ``edgekd ARGS`` in-process; assert the exit code; return the click Result."""
    from click.testing import CliRunner

    from edgekd.cli import cli

    res = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    out = res.output + (res.stderr if getattr(res, "stderr_bytes", None) else "")
    assert res.exit_code == expect, f"exit {res.exit_code} != {expect}\n{out}"
    return res


@pytest.fixture(scope="session")
def depth_run(tmp_path_factory):
    """A tiny trained depth run (2 epochs) shared by export and bench tests."""
    out = tmp_path_factory.mktemp("runs") / "depth"
    run_cli(["distill", "--task", "depth", *FAST_TEACHER, *tiny(epochs=2), "--out", out])
    return out


@pytest.fixture(scope="session")
def depth_onnx(depth_run):
    run_cli(["export", depth_run])
    return depth_run / "model.onnx"


PY = sys.executable
