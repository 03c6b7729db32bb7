"""edgekd distill end to end on tiny synthetic scenes (64x64, a couple of steps)."""

import json

import pytest
import torch

from conftest import FAST_TEACHER, TINY, run_cli, tiny
from edgekd.distill.registry import list_distances, list_projections


def read_jsonl(p):
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("method", list_distances())
@pytest.mark.parametrize("projection", list_projections())
def test_every_method_and_projection(tmp_path, method, projection):
    out = tmp_path / "run"
    run_cli(["distill", "--task", "depth", *FAST_TEACHER, "--method", method, "--projection", projection, *TINY, "--out", out])
    for f in ("config.json", "metrics.jsonl", "steps.jsonl", "spectrum.jsonl", "last.pt", "best.pt", "summary.json"):
        assert (out / f).exists(), f
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["distill"]["method"] == method and cfg["distill"]["projection"] == projection
    steps = read_jsonl(out / "steps.jsonl")
    assert len(steps) == 2 and all("distill" in s and s["distill"] >= 0 for s in steps)
    m = read_jsonl(out / "metrics.jsonl")[-1]
    assert 0 <= m["d1"] <= 1 and m["rmse"] > 0
    sv = read_jsonl(out / "spectrum.jsonl")[-1]["singular_values"]
    # inverted: P is (student 512? no: mobilenetv2 320) x (resnet18 512) -> min = 320 values
    assert len(sv) == 320 and sv == sorted(sv, reverse=True)


def test_default_random_vit_teacher(tmp_path):
    out = tmp_path / "vit"
    res = run_cli(["distill", "--task", "depth", "--teacher", "random", *tiny(train=4), "--out", out])
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["distill"]["teacher_arch"] == "vit_base_patch32_224"
    assert "done:" in res.output


def test_teacher_free_spectral(tmp_path):
    out = tmp_path / "spec"
    run_cli(["distill", "--profile", "mobile", "--task", "depth", "--teacher", "none", "--spectral", "2", *TINY, "--out", out])
    steps = read_jsonl(out / "steps.jsonl")
    assert "spectral" in steps[0] and "distill" not in steps[0] and steps[0]["spectral"] > 0
    assert not (out / "spectrum.jsonl").exists()  # no projector without a teacher
    ck = torch.load(out / "last.pt", weights_only=True)
    assert ck["extra"]["spectral.V"].shape == (320, 2)  # EfficientNet-Lite0 (mobile profile) ends in 320 channels


def test_teacher_is_an_edgekd_checkpoint_of_another_task(tmp_path):
    seg = tmp_path / "seg-teacher"
    run_cli(["distill", "--task", "segmentation", "--teacher", "none", *TINY, "--out", seg])
    out = tmp_path / "depth"
    run_cli(["distill", "--task", "depth", "--teacher", seg / "best.pt", *TINY, "--out", out])
    steps = read_jsonl(out / "steps.jsonl")
    assert all("distill" in s for s in steps)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["distill"]["teacher"].endswith("best.pt")


def test_segmentation_with_at_traditional_and_combined_spectral(tmp_path):
    out = tmp_path / "seg"
    run_cli(["distill", "--task", "segmentation", *FAST_TEACHER, "--method", "at", "--projection", "traditional",
             "--spectral", "2", *TINY, "--out", out])
    m = read_jsonl(out / "metrics.jsonl")[-1]
    assert 0 <= m["miou"] <= 1 and {"train_distill", "train_spectral"} <= set(m)


def test_resume_continues_from_the_saved_epoch(tmp_path):
    out = tmp_path / "r"
    run_cli(["distill", "--task", "depth", "--teacher", "none", *tiny(epochs=3), "--max-steps", "2", "--out", out])
    ck = torch.load(out / "last.pt", weights_only=True)
    assert (ck["epoch"], ck["step"]) == (1, 2)
    run_cli(["distill", "--resume", "--max-steps", "0", "--out", out, "--quiet"])  # lift the cap, keep the recipe
    ck = torch.load(out / "last.pt", weights_only=True)
    assert (ck["epoch"], ck["step"]) == (3, 6)
    assert [m["epoch"] for m in read_jsonl(out / "metrics.jsonl")] == [1, 2, 3]
    final = json.loads((out / "summary.json").read_text())["final"]
    run_cli(["distill", "--resume", "--out", out, "--quiet"])  # nothing left to do: the figures stay
    assert json.loads((out / "summary.json").read_text())["final"] == final and "d1" in final


def test_existing_run_is_not_overwritten(tmp_path):
    out = tmp_path / "keep"
    run_cli(["distill", "--task", "depth", "--teacher", "none", *TINY, "--out", out])
    before = (out / "last.pt").read_bytes()
    res = run_cli(["distill", "--task", "depth", "--teacher", "none", *TINY, "--out", out], expect=2)
    assert "--resume" in res.output and (out / "last.pt").read_bytes() == before
