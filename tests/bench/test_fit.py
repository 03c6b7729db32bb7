"""edgekd fit: candidates timed on this machine, sorted, the Pareto front and the budget flag, profiles it writes."""

import json

import pytest

from conftest import run_cli
from edgekd.config import load_profile
from edgekd.fit import Candidate, choose, mark_pareto, parse_candidates, smaller_size

FAST = ["--min-time", "0.05", "--profile", "mobile"]


def _target(tmp_path, budget_ms):
    p = tmp_path / f"box-{budget_ms:g}.toml"
    p.write_text(f'name = "box"\naccelerator = "cpu"\nruntimes = ["onnxruntime"]\nprecisions = ["fp32", "int8"]\n'
                 f"threads = 2\nlatency_budget_ms = {budget_ms}\n")
    return p


def _row(name, p50, macs, fits=True):
    return {"candidate": name, "p50_ms": p50, "macs": macs, "fits": fits}


def test_pareto_front_and_choice():
    rows = [_row("a", 1.0, 10), _row("b", 2.0, 30), _row("c", 3.0, 20), _row("d", 4.0, 40, fits=False), _row("e", 2.0, 30)]
    mark_pareto(rows, "macs")
    # c is slower than b with less compute; a, b (and its twin e) and d are each unbeaten
    assert {r["candidate"] for r in rows if r["pareto"]} == {"a", "b", "d", "e"}
    assert choose(rows, "macs")["candidate"] in ("b", "e")  # d is better but misses the budget
    mark_pareto(rows, "macs", higher_is_better=False)  # e.g. a loss-like metric: a beats every other
    assert [r["candidate"] for r in rows if r["pareto"]] == ["a"]


def test_candidate_parsing():
    assert smaller_size((192, 256)) == (128, 192) and smaller_size((64, 64)) == (32, 32)
    got = parse_candidates("mobilenetv2_050@64x96@int8, mobilenetv2_050", (64, 64), ["fp32", "int8"])
    assert [c.name for c in got] == ["mobilenetv2_050@64x96@int8", "mobilenetv2_050@64x64@fp32", "mobilenetv2_050@64x64@int8"]
    assert got[0] == Candidate("mobilenetv2_050", (64, 96), "int8")


def test_fit_table_sorted_front_budget_and_profile(tmp_path):
    out, prof = tmp_path / "fit", tmp_path / "my.toml"
    res = run_cli(["fit", *FAST, "--target", _target(tmp_path, 1e6), "--out", out, "--write-profile", prof,
                   "--candidates", "mobilenetv2_050@64x64@fp32,mobilenetv2_050@64x64@int8"])
    r = json.loads((out / "fit.json").read_text())
    rows = r["candidates"]
    assert [x["p50_ms"] for x in rows] == sorted(x["p50_ms"] for x in rows) and len(rows) == 2
    assert all(x["fits"] for x in rows) and r["backend"] == "ort-cpu"
    fp32, int8 = (next(x for x in rows if x["precision"] == p) for p in ("fp32", "int8"))
    assert int8["size_mb"] < fp32["size_mb"] / 2 and int8["macs"] == fp32["macs"] > 0 and fp32["params"] > 0
    # equal compute: the faster one is on the front, the slower one only if it ties
    assert rows[0]["pareto"] and rows[1]["pareto"] == (rows[1]["p50_ms"] == rows[0]["p50_ms"])
    lines = res.output.splitlines()
    assert lines.index(next(ln for ln in lines if ln.startswith(rows[0]["candidate"]))) < lines.index(
        next(ln for ln in lines if ln.startswith(rows[1]["candidate"])))
    assert "chosen: " + r["chosen"] in res.output and (out / "fit.md").exists()
    cfg = load_profile(str(prof))  # edgekd distill --profile my.toml takes it
    chosen = next(x for x in rows if x["candidate"] == r["chosen"])
    assert cfg["model"]["student"] == "mobilenetv2_050" and cfg["data"]["image_size"] == [64, 64]
    assert cfg["export"]["precision"] == chosen["precision"] and cfg["target"]["latency_budget_ms"] == 1e6


def test_fit_budget_missed(tmp_path):
    out, prof = tmp_path / "fit", tmp_path / "my.toml"
    res = run_cli(["fit", *FAST, "--target", _target(tmp_path, 0.001), "--out", out, "--write-profile", prof,
                   "--candidates", "mobilenetv2_050@64x64@fp32"], expect=2)
    assert "no candidate fits the 0.001 ms budget" in res.output and not prof.exists()
    r = json.loads((out / "fit.json").read_text())  # the measurements are kept
    assert not r["candidates"][0]["fits"] and r["chosen"] is None


@pytest.mark.parametrize("args, message", [
    (["--candidates", "mobilenetv9_000@64x64@fp32"], "unknown candidate student model 'mobilenetv9_000'"),
    (["--candidates", "mobilenetv2_050@65x64@fp32"], "must be positive and divisible by 32"),
    (["--candidates", "mobilenetv2_050@64x64@fp16"], "precision 'fp16' does not run here"),
    (["--backend", "ort-gpu"], "unknown backend 'ort-gpu'"),
    (["--backend", "tensorrt"], "edgekd fit benches ONNX files"),
])
def test_fit_errors_are_one_line(tmp_path, args, message):
    res = run_cli(["fit", *FAST, "--out", tmp_path / "fit", *args], expect=2)
    errors = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in res.output
    assert not (tmp_path / "fit").exists()


@pytest.mark.slow
def test_fit_train_epochs_adds_metric_and_plot(tmp_path):
    out = tmp_path / "fit"
    sets = ["train.train_size=8", "train.val_size=4", "train.batch_size=4", "train.workers=0", "train.device=cpu"]
    res = run_cli(["fit", *FAST, "--target", _target(tmp_path, 1e6), "--out", out, "--train-epochs", "1",
                   "--candidates", "mobilenetv2_050@64x64@fp32", *[a for s in sets for a in ("--set", s)]])
    r = json.loads((out / "fit.json").read_text())
    assert r["front_key"] == "metric" and 0 <= r["candidates"][0]["metric"] <= 1 and r["candidates"][0]["metric_name"] == "d1"
    assert (out / "fit.png").stat().st_size > 1000 and " d1" in res.output
