"""The fast part of the fault-injection suite (issue 25): a full disk while writing a checkpoint, a metrics line and an
ONNX file; a read-only output folder; a small fuzz loop over real inputs; NaN/Inf in inputs and targets; a depth PNG of
the wrong kind.  The long part (SIGKILL at random moments, bigger fuzz, a real full tmpfs) is tests/faults/run_all.py."""

import errno
import os

import numpy as np
import pytest
import torch

import faultlib
from conftest import run_cli

RUN = ["distill", "--task", "depth", "--teacher", "none", "--student-weights", "none", "--warmup-steps", "1", *faultlib.TINY]


def _enospc_after(monkeypatch, module, name, calls_ok):
    """``module.name`` (a write function) raises ENOSPC from its ``calls_ok + 1``-th call on."""
    real, count = getattr(module, name), {"n": 0}

    def failing(*a, **k):
        count["n"] += 1
        if count["n"] > calls_ok:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*a, **k)

    monkeypatch.setattr(module, name, failing)


def test_a_full_disk_while_checkpointing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import edgekd.fileio as fileio

    out = tmp_path / "r"
    run_cli([*RUN, "--out", out])
    before = torch.load(out / "last.pt", weights_only=True)["step"]
    real = fileio.atomic_write

    def disk_full_at_last_pt(path, write, mode="wb"):  # the disk fills while last.pt is being written
        def half_then_enospc(f):
            f.write(b"half a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")

        return real(path, half_then_enospc if str(path).endswith("last.pt") else write, mode)

    monkeypatch.setattr(fileio, "atomic_write", disk_full_at_last_pt)
    res = run_cli(["distill", "--resume", "--epochs", "2", "--out", out, "--quiet"], expect=2)
    err = "\n".join(x for x in res.stderr.splitlines() if not x.startswith("warning:"))
    assert len(err.splitlines()) == 1 and "last.pt" in err and "No space left on device, ENOSPC" in err and "the previous" in err and "is intact" in err, err
    monkeypatch.undo()
    assert torch.load(out / "last.pt", weights_only=True)["step"] >= before  # loadable: the previous version
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]  # no temporary file left behind
    run_cli(["distill", "--resume", "--epochs", "2", "--out", out, "--quiet"])  # space again: the run continues
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 4


def test_a_full_disk_while_logging_a_metrics_line_is_one_line(tmp_path, monkeypatch):
    import edgekd.fileio as fileio

    _enospc_after(monkeypatch, fileio.os, "write", 2)
    res = run_cli([*RUN, "--out", tmp_path / "r"], expect=2)
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: cannot append to") and "the lines already in it are intact" in err
    monkeypatch.undo()
    lines = (tmp_path / "r" / "steps.jsonl").read_text().splitlines(keepends=True)
    assert len(lines) == 2 and all(x.endswith("\n") for x in lines)  # no torn line


def test_a_full_disk_while_writing_an_onnx_file_keeps_the_previous_model(depth_run, tmp_path, monkeypatch):
    import shutil

    import onnx

    import edgekd.fileio as fileio

    run = tmp_path / "run"
    shutil.copytree(depth_run, run)
    run_cli(["export", run, "--precision", "fp32"])
    before = (run / "model.onnx").read_bytes()

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio._WriteErrors, "write", full)
    res = run_cli(["export", run, "--precision", "fp32"], expect=2)
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1 and "ENOSPC" in err and "the previous model.onnx is intact" in err, err
    assert (run / "model.onnx").read_bytes() == before
    onnx.checker.check_model(onnx.load(run / "model.onnx"))


def test_a_read_only_output_folder_is_refused_before_work(tmp_path, monkeypatch):
    import edgekd.fileio as fileio

    ro = tmp_path / "ro"
    ro.mkdir()
    real_access = os.access
    monkeypatch.setattr(fileio.os, "access", lambda p, mode: False if str(p) == str(ro) else real_access(p, mode))  # root ignores chmod
    res = run_cli([*RUN, "--out", ro / "run"], expect=2)
    assert "is not writable (Permission denied on" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert list(ro.iterdir()) == []


def test_fuzzed_real_inputs_are_refused_in_one_line(depth_run, depth_onnx, tmp_path):
    inputs = faultlib.corpus(tmp_path / "corpus", depth_run / "best.pt", depth_onnx)
    outcomes = faultlib.fuzz([i for i in inputs if i.kind != "pt"], tmp_path / "work", n_random=1)  # .pt: the slow part
    failed = [o for o in outcomes if o.verdict == "failed"]
    assert not failed, failed
    assert sum(o.verdict == "refused" for o in outcomes) >= 20


def test_nan_and_inf_in_targets_are_masked_and_in_images_refused(tmp_path):
    import h5py

    p = faultlib.write_nyu_mat(tmp_path / "nyu")
    with h5py.File(p, "r+") as f:
        d = f["depths"][...]
        d[0, :3, :3], d[1, 0, 0] = np.nan, np.inf
        f["depths"][...] = d
    run_cli(["distill", "--task", "depth", "--teacher", "none", "--student-weights", "none", "--data", p, *faultlib.TINY,
             "--out", tmp_path / "r"])
    import json

    m = json.loads((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()[-1])
    assert np.isfinite(m["train_total"]) and np.isfinite(m["d1"])
    q = faultlib.write_nyu_mat(tmp_path / "nyu2")
    with h5py.File(q, "r+") as f:
        img = f["images"][...].astype(np.float32)
        img[0, 0, 0, 0] = np.nan
        del f["images"]
        f["images"] = img
    res = run_cli(["data", "inspect", q, "--task", "depth"], expect=2)
    assert "image 1 holds NaN or infinite values" in res.stderr and len(res.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("depth,message", [(np.full((16, 16), 25, np.uint8), "is 8-bit"),
                                           (np.zeros((16, 16, 3), np.uint8), "has 3 channels")])
def test_a_depth_png_of_the_wrong_kind_is_refused(tmp_path, depth, message):
    faultlib.write_depth_list(tmp_path / "d", depth=depth)
    res = run_cli(["data", "inspect", tmp_path / "d", "--task", "depth"], expect=2)
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr
