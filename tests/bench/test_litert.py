"""LiteRT (.tflite): the torch-free bench backend, the layout, the model card, bad files, ``edgekd bench RUN_DIR``,
and (with litert-torch installed) ``edgekd export --format litert``."""

import importlib.util
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import run_cli
from edgekd.bench.runners.base import installed

pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed (pip install ai-edge-litert)")

import tflite_fixture  # noqa: E402  (needs ai_edge_litert's schema)
from edgekd.bench.evaluate import input_batch, open_samples  # noqa: E402
from edgekd.bench.runners import create_runner  # noqa: E402
from edgekd.bench.tflite_file import embed_metadata, read_metadata  # noqa: E402
from edgekd.tasks import create_task  # noqa: E402

FAST = ["--min-iters", "3", "--min-time", "0", "--warmup-iters", "1", "--warmup-time", "0", "--quiet"]
HAS_CONVERTER = installed("litert_torch") and installed("ai_edge_quantizer")
NO_CONVERTER = "litert-torch is not installed (pip install -e '.[litert]'; .ci/run leaves it out: ~950 MB with jax and transformers)"


@pytest.fixture()
def pair(tmp_path):
    """model.onnx and model.tflite of the same conv-sigmoid graph (NCHW and NHWC), each with edgekd's model card."""
    return tflite_fixture.write_pair(tmp_path)


def _scenes(n=4):
    task = create_task("depth")
    return input_batch(task, list(open_samples("synthetic", "val", (tflite_fixture.H, tflite_fixture.W), n, 0, "auto", task)))


def _outputs(path, backend, x):
    with create_runner(backend, path, threads=1) as r:
        return r.infer(x)[0]


def test_tflite_predicts_what_the_onnx_file_predicts_on_real_scenes(pair):
    onnx_path, tflite_path = pair
    x = _scenes()
    got, want = _outputs(tflite_path, "litert", x), _outputs(onnx_path, "ort-cpu", x)
    assert got.shape == want.shape == (4, 1, tflite_fixture.H, tflite_fixture.W)
    assert np.abs(got - want).max() < 1e-4
    # the classic mix-up, NCHW bytes read as NHWC: another prediction, far beyond the tolerance above
    wrong = _outputs(onnx_path, "ort-cpu", np.ascontiguousarray(x.reshape(4, tflite_fixture.H, tflite_fixture.W, 3).transpose(0, 3, 1, 2)))
    assert np.abs(wrong - want).max() > 0.1


def test_bench_tflite_reports_the_onnx_files_accuracy(pair, tmp_path):
    onnx_path, tflite_path = pair
    rt, ro = tmp_path / "t.json", tmp_path / "o.json"
    res = run_cli(["bench", tflite_path, "--json", rt, *FAST])
    run_cli(["bench", onnx_path, "--json", ro, *FAST])
    t, o = json.loads(rt.read_text()), json.loads(ro.read_text())
    assert t["environment"]["backend"] == "litert" and t["environment"]["providers"] == ["XNNPACK"] and t["input"] == [3, 48, 64]
    assert t["accuracy"]["images"] == o["accuracy"]["images"] == 4
    for k, v in o["accuracy"]["metrics"].items():
        assert t["accuracy"]["metrics"][k] == pytest.approx(v, abs=1e-5), k
    assert "io" in t["latency"]["batch1"]["stages_p50_ms"] and "backend auto" not in res.output


def test_model_card_round_trip(pair):
    _, tflite_path = pair
    data = tflite_path.read_bytes()
    card = read_metadata(data)
    assert card == tflite_fixture.model_card(layout="NHWC")
    again = embed_metadata(data, {**card, "precision": "int8"})  # a new card replaces the old one
    assert read_metadata(again)["precision"] == "int8" and len(again) < len(data) + 200
    assert read_metadata(tflite_fixture.tflite_bytes()) == {}  # a file without a card


def test_bad_tflite_files_are_one_line_exit_2(tmp_path, pair):
    _, good = pair
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"definitely not a flatbuffer")
    res = run_cli(["bench", bad, *FAST], expect=2)
    assert "is not a LiteRT/TFLite model (no TFL3 flatbuffer identifier)" in res.output and "Traceback" not in res.output
    cut = tmp_path / "cut.tflite"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    res = run_cli(["bench", cut, *FAST], expect=2)
    assert len([line for line in res.output.splitlines() if line.startswith("error:")]) == 1
    assert "damaged or truncated TFLite flatbuffer" in res.output or "LiteRT cannot load" in res.output


def test_tflite_without_a_model_card_is_refused_for_accuracy(tmp_path):
    f = tmp_path / "plain.tflite"
    f.write_bytes(tflite_fixture.tflite_bytes())
    res = run_cli(["bench", f, *FAST], expect=2)
    assert "carries no edgekd metadata" in res.output


def test_litert_bench_needs_no_torch(pair, tmp_path):
    from test_bench import NO_TORCH

    script = tmp_path / "no_torch.py"
    script.write_text(NO_TORCH)
    out = tmp_path / "r.json"
    p = subprocess.run([sys.executable, str(script), "bench", str(pair[1]), "--json", str(out), *FAST], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads(out.read_text())
    assert r["environment"]["backend"] == "litert" and r["accuracy"]["images"] == 4


def test_bench_run_dir_one_table_with_a_status_for_what_cannot_run(pair, tmp_path):
    run = pair[0].parent
    (run / "model.int8.tflite").write_bytes(b"\0" * 64)  # damaged
    (run / "model.fp16.engine").write_bytes(b"not an engine")  # TensorRT: absent here, or refuses the file
    (run / "model.int8.failed.onnx").write_bytes(b"kept for inspection, never benched")
    out = tmp_path / "rd.json"
    res = run_cli(["bench", run, "--json", out, *FAST])
    rows = {r["file"]: r for r in json.loads(out.read_text())["rows"]}
    assert list(rows) == ["model.onnx", "model.tflite", "model.int8.tflite", "model.fp16.engine"]
    assert rows["model.onnx"]["status"] == rows["model.tflite"]["status"] == "ok"
    assert rows["model.tflite"]["value"] == pytest.approx(rows["model.onnx"]["value"], abs=1e-5)
    assert rows["model.tflite"]["delta_vs_fp32"] == 0 and rows["model.tflite"]["format"] == "litert"
    assert rows["model.int8.tflite"]["status"] == "error" and "TFL3" in rows["model.int8.tflite"]["reason"]
    assert rows["model.fp16.engine"]["status"] in ("skipped", "error") and rows["model.fp16.engine"]["reason"]
    header = next(line for line in res.output.splitlines() if line.startswith("file"))
    assert header.split() == ["file", "format", "precision", "backend", "status", "size", "MB", "d1", "Δ", "vs", "fp32", "p50", "ms",
                              "p90", "ms", "FPS"]
    assert "model.int8.tflite (litert): error:" in res.output and "Traceback" not in res.output


def test_bench_run_dir_without_exported_files(tmp_path):
    res = run_cli(["bench", tmp_path], expect=2)
    assert "holds no exported model file" in res.output


@pytest.mark.skipif(HAS_CONVERTER, reason="litert-torch is installed: the missing-converter line cannot be shown")
def test_export_litert_without_the_converter_says_what_to_install(depth_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(depth_run, run, ignore=shutil.ignore_patterns("model*", "export.json"))
    res = run_cli(["export", run, "--format", "tflite"], expect=2)
    errors = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and 'pip install -e ".[litert]"' in errors[0]
    assert not list(run.glob("model*")) and not (run / "export.json").exists()  # said before anything is written


@pytest.fixture(scope="module")
def litert_run(depth_run, tmp_path_factory):
    if not HAS_CONVERTER:
        pytest.skip(NO_CONVERTER)
    run = tmp_path_factory.mktemp("litert") / "run"
    shutil.copytree(depth_run, run, ignore=shutil.ignore_patterns("model*", "export.json"))
    run_cli(["export", run, "--format", "litert", "--precision", "fp32", "--calib-size", "4", "--eval-size", "4", "--max-drop", "1"])
    return run


def test_export_litert_writes_three_checked_files_with_the_card(litert_run):
    rep = json.loads((litert_run / "export.json").read_text())
    assert rep["format"] == "litert" and rep["tflite_fp32"]["parity"]["pass"] and rep["tflite_fp32"]["parity"]["max_abs_err"] < 1e-3
    assert rep["tflite_fp16"]["parity"]["pass"] and rep["tflite_int8"]["eval_images"] == 4 and "drop" in rep["tflite_int8"]
    assert {"model.onnx", "model.tflite", "model.fp16.tflite", "model.int8.tflite"} <= set(rep["artefacts"])
    onnx_card = dict(create_runner("ort-cpu", litert_run / "model.onnx").open().metadata())
    for name, precision in (("model.tflite", "fp32"), ("model.fp16.tflite", "fp16"), ("model.int8.tflite", "int8")):
        card = read_metadata((litert_run / name).read_bytes())
        assert card["precision"] == precision and card["layout"] == "NHWC" and json.loads(card["input_shape"]) == [1, 64, 64, 3]
        same = {k for k in onnx_card if k not in ("layout", "input_shape", "precision", "input_name")}
        assert {k: card[k] for k in same} == {k: onnx_card[k] for k in same}  # the ONNX file's model card
    sizes = {n: (litert_run / n).stat().st_size for n in ("model.tflite", "model.fp16.tflite", "model.int8.tflite")}
    assert sizes["model.int8.tflite"] < sizes["model.fp16.tflite"] < sizes["model.tflite"]


def test_exported_tflite_predicts_what_the_onnx_file_predicts(litert_run):
    x = input_batch(create_task("depth"), list(open_samples("synthetic", "val", (64, 64), 4, 0, "auto", create_task("depth"))))
    want = _outputs(litert_run / "model.onnx", "ort-cpu", x)
    assert np.abs(_outputs(litert_run / "model.tflite", "litert", x) - want).max() < 1e-3
    assert np.abs(_outputs(litert_run / "model.fp16.tflite", "litert", x) - want).max() < 0.05
    int8 = _outputs(litert_run / "model.int8.tflite", "litert", x)
    assert np.abs(int8 - want).mean() < 0.1 * np.abs(want).mean()  # quantised: close on average, not to the last digit


def test_run_dir_without_litert_says_so_once_and_benches_the_onnx_file(pair, monkeypatch):
    """The mobile target lists LiteRT first; on a machine without ai-edge-litert the .tflite rows are skipped, one line says
    so, and ONNX Runtime runs the ONNX file."""
    from edgekd.bench.runners.litert import LiteRTRunner

    monkeypatch.setattr(LiteRTRunner, "unavailable", classmethod(lambda cls, **_: "ai-edge-litert is not installed; pip install ai-edge-litert"))
    res = run_cli(["bench", pair[0].parent, *FAST])
    assert res.output.count("backend auto: litert, android-arm64's first runtime, is not installed here") == 1
    assert "model.tflite (litert): skipped: ai-edge-litert is not installed" in res.output
    assert next(line for line in res.output.splitlines() if line.startswith("model.onnx")).split()[4] == "ok"


@pytest.mark.slow  # a fresh venv and two pip installs; test_litert_bench_needs_no_torch covers the torch-free path in-process
def test_core_install_plus_ai_edge_litert_benches_tflite_without_torch(pair, tmp_path):
    """pip install <repo> + pip install ai-edge-litert into a fresh venv (no torch): a .tflite is benched with accuracy."""
    from pathlib import Path

    venv = tmp_path / "venv"
    clean = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home())}  # no PYTHONPATH: only what the venv holds
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = str(venv / "bin" / "python")
    repo = str(Path(__file__).parents[2])
    p = subprocess.run([py, "-m", "pip", "install", "-q", repo, "ai-edge-litert>=2.3"], capture_output=True, text=True, timeout=900, env=clean)
    assert p.returncode == 0, p.stderr[-2000:]
    p = subprocess.run([py, "-c", "import torch"], capture_output=True, text=True, cwd=tmp_path, env=clean)
    assert p.returncode != 0 and "No module named 'torch'" in p.stderr
    out = tmp_path / "r.json"
    p = subprocess.run([py, "-m", "edgekd", "bench", str(pair[1]), "--json", str(out), *FAST], capture_output=True, text=True, timeout=300,
                       cwd=tmp_path, env=clean)
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads(out.read_text())
    assert r["environment"]["backend"] == "litert" and r["accuracy"]["images"] == 4


@pytest.mark.skipif(importlib.util.find_spec("litert_torch") is not None, reason="litert-torch is installed here: the profile's LiteRT format is built")
def test_profile_default_litert_without_the_converter_writes_onnx_with_a_note(depth_run, tmp_path):
    """The mobile profile deploys LiteRT; without the converter extra a plain `edgekd export RUN` still writes ONNX."""
    from edgekd.export.job import ExportOptions, load_job
    from edgekd.export.pipeline import export

    run = tmp_path / "run"
    shutil.copytree(depth_run, run, ignore=shutil.ignore_patterns("model*", "export.json"))
    lines = []
    job = load_job(run, ExportOptions(), None, lines.append)
    job.cfg.export.format = "litert"  # what the mobile profile says
    report = export(job)
    assert report["format"] == "onnx" and (run / "model.onnx").exists() and not list(run.glob("*.tflite"))
    assert any("the profile deploys litert" in line and "litert" in line and "ONNX files only" in line for line in lines)
