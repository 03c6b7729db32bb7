"""What the CLI and README say is what they do (issue #26, finding 6): help shows every default, the README
names only options the verb has, teacher kinds lists none, fit gives budget verdicts only on target."""

import json
import re
from pathlib import Path

import click
import pytest

from conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]
OTHER_TOOLS = {"--help", "--index-url", "--no-deps", "--nproc-per-node", "--logdir"}  # pip's, torchrun's and tensorboard's


def _options(cmd) -> set:
    found = set()
    for p in cmd.params:
        found.update(o for o in p.opts + p.secondary_opts if o.startswith("--"))
    if isinstance(cmd, click.Group):
        for c in cmd.commands.values():
            found |= _options(c)
    return found


def test_readme_names_only_options_the_verb_has():
    from edgekd.cli import cli

    every = _options(cli) | OTHER_TOOLS
    text = (ROOT / "README.md").read_text()
    for para in re.split(r"\n(?=\* )|\n\s*\n", text):
        used = set(re.findall(r"(?<![\w#-])--[a-z][a-z0-9-]*", para))
        verb = re.match(r"\s*\*?\s*`edgekd ([a-z]+)", para)
        allowed = (_options(cli.commands[verb[1]]) | OTHER_TOOLS) if verb and verb[1] in cli.commands else every
        assert used <= allowed, (sorted(used - allowed), para[:120])


def test_every_distill_option_shows_its_default():
    res = run_cli(["distill", "--help"])
    entries = re.split(r"\n  (?=-)", res.output.split("Options:")[1])
    missing = [" ".join(e.split())[:60] for e in entries if e.strip() and "[" not in e and not e.strip().startswith("-h, --help")]
    assert not missing, missing
    assert "[the profile's: ]" not in res.output  # an empty default reads "none"


def test_teacher_kinds_lists_none():
    out = run_cli(["teacher", "kinds"]).output
    assert re.search(r"^none\s", out, re.M)


@pytest.mark.skipif(__import__("platform").machine().lower() in ("aarch64", "arm64"), reason="this machine is an ARM CPU like the mobile target")
def test_fit_gives_no_budget_verdict_off_target(tmp_path):
    out = tmp_path / "fit"
    res = run_cli(["fit", "--profile", "mobile", "--min-time", "0.05", "--out", out, "--candidates", "mobilenetv2_050@64x64@fp32",
                   "--write-profile", tmp_path / "mine.toml"])
    r = json.loads((out / "fit.json").read_text())
    assert r["on_target"] is False and "android-arm64" in r["why_no_verdict"]
    assert r["candidates"][0]["fits"] is None and "not on target: no budget verdict" in res.output
    assert r["environment"]["cores"] and r["environment"]["arch"] and r["environment"]["backend"] == "ort-cpu"
    prof = (tmp_path / "mine.toml").read_text()
    assert "budget is unchecked" in prof and "budget 50 ms on android-arm64" not in prof


# ----------------------------------------------------------------- issue #26, finding 7: paths and targets
def test_relative_data_is_stored_resolved_and_resume_accepts_it_named_another_way(tmp_path, monkeypatch):
    from conftest import tiny

    run_cli(["data", "synth", "--out", tmp_path / "scenes", "--n", "8", "--val-n", "4", "--image-size", "64", "64"])
    monkeypatch.chdir(tmp_path)
    run_cli(["distill", "--task", "depth", "--teacher", "none", "--data", "scenes", *tiny(epochs=1), "--out", "run"])
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["data"]["data"] == str((tmp_path / "scenes").resolve())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the same data, named by its absolute path from another directory
    run_cli(["distill", "--task", "depth", "--teacher", "none", "--data", tmp_path / "scenes", *tiny(epochs=2), "--out", tmp_path / "run",
             "--resume"])
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["epochs"] == 2


def test_export_for_another_target_writes_its_int8_scheme(depth_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(depth_run, run, ignore=shutil.ignore_patterns("report", "model*", "export.json"))
    res = run_cli(["export", run, "--precision", "int8", "--max-drop", "1", "--calib-size", "4", "--target", "android-arm64"])
    exp = json.loads((run / "export.json").read_text())
    assert exp["int8"]["symmetric"] is False and "u8s8 for CPU" in res.output  # a jetson run, written for a CPU
    assert "exporting for android-arm64 (the run was trained for jetson-orin-nano)" in res.output
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(run / "model.int8.onnx")).metadata_props}
    assert meta["target"] == "android-arm64"


def test_bench_shape_for_a_dynamic_model_and_fp16_on_a_cpu_note(tmp_path):
    from test_bench import FAST, _third_party_onnx

    f = _third_party_onnx(tmp_path / "third.onnx", ["N", 3, "H", "W"])
    out = tmp_path / "t.json"
    res = run_cli(["bench", f, "--no-accuracy", "--shape", "64x96", "--json", out, *FAST])
    assert json.loads(out.read_text())["input"] == [3, 64, 96] and "timing it at 64x96" in res.output
    fixed = _third_party_onnx(tmp_path / "fixed.onnx", [1, 3, 32, 48])
    assert "takes a fixed input 3x32x48" in run_cli(["bench", fixed, "--no-accuracy", "--shape", "64x96", *FAST], expect=2).output
    from edgekd.bench.run import _notes

    r = {"precision": "fp16", "environment": {"backend": "ort-cpu", "arch": "x86_64"}}
    assert "fp16 model on a CPU backend" in _notes(r, {"target": "jetson-orin-nano"})[0]
    assert _notes({**r, "environment": {"backend": "ort-cuda", "arch": "x86_64"}}, {}) == []
