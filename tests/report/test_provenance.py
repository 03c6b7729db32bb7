"""Every figure says what it measured (issue #26, findings 1 and 2): bench's fp32 reference on the same
images, file hashes and checkpoint steps, stale files and stale bench records, which checkpoint export takes."""

import json
import shutil

import pytest

from conftest import FAST_TEACHER, run_cli, tiny

FAST = ["--min-iters", "3", "--min-time", "0", "--warmup-iters", "1", "--warmup-time", "0", "--quiet"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny finished depth run (4 validation scenes) with model.onnx and model.int8.onnx."""
    run = tmp_path_factory.mktemp("prov") / "run"
    run_cli(["distill", "--task", "depth", *FAST_TEACHER, *tiny(epochs=1), "--out", run])
    run_cli(["export", run, "--precision", "int8", "--max-drop", "1", "--calib-size", "4"])
    return run


def _bench(path, out, *extra):
    res = run_cli(["bench", path, "--json", out, *FAST, *extra])
    return json.loads(out.read_text()), res.output


# ----------------------------------------------------------------- finding 1: the reference on the same images
def test_int8_reference_is_the_fp32_file_on_the_same_images(exported, tmp_path):
    fp32, out32 = _bench(exported / "model.onnx", tmp_path / "fp32.json", "--val-size", "2")
    int8, out8 = _bench(exported / "model.int8.onnx", tmp_path / "int8.json", "--val-size", "2")
    a32, a8 = fp32["accuracy"], int8["accuracy"]
    assert "model.onnx beside it (same checkpoint) on the same 2 images" in a8["reference_source"]
    # the reference is what the fp32 file measures on these 2 images, not the checkpoint's 4-image figure
    assert a8["reference_fp32"]["d1"] == pytest.approx(a32["metrics"]["d1"], abs=1e-6)
    assert a8["delta_vs_reference"] == pytest.approx(a8["metrics"]["d1"] - a32["metrics"]["d1"], abs=1e-6)
    assert a8["data_fingerprint"]["inputs_sha256"] == a32["data_fingerprint"]["inputs_sha256"]
    assert a8["data_fingerprint"]["images"] == 2 and "fp32 reference: model.onnx beside it" in out8


def test_a_lone_file_on_other_images_gets_no_delta(exported, tmp_path):
    lone = tmp_path / "device" / "model.int8.onnx"
    lone.parent.mkdir()
    shutil.copy(exported / "model.int8.onnx", lone)
    r, out = _bench(lone, tmp_path / "lone.json", "--val-size", "2")
    acc = r["accuracy"]
    assert acc["reference_fp32"] == {} and "delta_vs_reference" not in acc
    assert "measured on 4 images" in acc["reference_why_none"] and "no fp32 reference on these images" in out
    # on exactly the images the checkpoint was judged on (the run's 4), its stored figures are the reference
    same, _ = _bench(lone, tmp_path / "same.json", "--val-size", "4")
    assert "the checkpoint's validation on the same 4 images" in same["accuracy"]["reference_source"]
    assert "delta_vs_reference" in same["accuracy"]


def test_report_sets_figures_against_each_other_only_on_the_same_images(exported, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(exported, run, ignore=shutil.ignore_patterns("report", "*.json.bench"))
    _bench(run / "model.onnx", run / "bench-fp32.json", "--val-size", "4")
    _bench(run / "model.int8.onnx", run / "bench-int8-small.json", "--val-size", "2")
    from edgekd.report.page import deployment_rows

    rows = {r["precision"]: r for r in deployment_rows(run, "d1")}
    # int8's delta is its own same-images reference (2 images), never int8(2 images) - fp32(4 images)
    b8 = json.loads((run / "bench-int8-small.json").read_text())
    assert rows["int8"]["delta"] == pytest.approx(b8["accuracy"]["delta_vs_reference"])
    assert rows["int8"]["source"].startswith("bench, 2 images") and rows["fp32"]["source"].startswith("bench, 4 images")
    # a newer bench of the same file replaces the older one in the report, whatever the JSON file is called
    _bench(run / "model.int8.onnx", run / "a-newer.json", "--val-size", "4")
    rows = {r["precision"]: r for r in deployment_rows(run, "d1")}
    assert rows["int8"]["source"].startswith("bench, 4 images") and rows["int8"]["step"] == rows["fp32"]["step"] > 0


# ----------------------------------------------------------------- finding 2: hashes, steps, stale files
def test_files_and_bench_records_carry_hash_and_step(exported, tmp_path):
    from edgekd.bench.provenance import run_files, sha256_file

    exp = json.loads((exported / "export.json").read_text())
    for name in ("model.onnx", "model.int8.onnx"):
        rec = exp["artefacts"][name]
        assert rec["sha256"] == sha256_file(exported / name)
        assert rec["checkpoint_sha256"] == sha256_file(exported / "best.pt") and rec["checkpoint_step"] == 2
    files = run_files(exported)
    assert files["model.onnx"]["checkpoint"] == "best.pt" and files["model.onnx"]["stale"] is None
    r, out = _bench(exported / "model.onnx", tmp_path / "b.json", "--val-size", "2")
    assert r["file"]["sha256"] == sha256_file(exported / "model.onnx") and r["file"]["checkpoint_step"] == 2
    assert r["measured_at"] and "from best.pt at step 2" in out


def _new_best(run):
    """What a resumed run that improves does: a new best.pt at a later step (written by the trainer's own save)."""
    import torch

    from edgekd.train import checkpoint as ckpt_io

    ck = torch.load(run / "best.pt", weights_only=True)
    ck["step"] += 2
    k = next(iter(ck["student"]))
    ck["student"][k] = ck["student"][k] * 1.01
    ckpt_io.save(run / "best.pt", ck)


def test_report_marks_stale_files_and_stale_benches(exported, tmp_path):
    from edgekd.bench.provenance import run_files
    from edgekd.report.page import deployment_rows

    run = tmp_path / "run"
    shutil.copytree(exported, run, ignore=shutil.ignore_patterns("report"))
    _bench(run / "model.onnx", run / "bench-fp32.json", "--val-size", "2")
    assert all(not r["status"] for r in deployment_rows(run, "d1"))
    _new_best(run)
    stale = run_files(run)["model.onnx"]["stale"]
    assert "made from best.pt at step 2; best.pt has changed since (now step 4)" in stale
    run_cli(["report", run])
    md = (run / "report" / "report.md").read_text()
    fp32 = next(line for line in md.splitlines() if line.startswith("| fp32 | model.onnx |"))
    assert "best.pt has changed since" in fp32 and "| step | status |" in md
    # re-export fp32 only: model.onnx is current again, its old bench is not, and the int8 file is still stale
    run_cli(["export", run, "--precision", "fp32"])
    rows = {r["precision"]: r for r in deployment_rows(run, "d1")}
    assert rows["fp32"]["step"] == 4 and any("bench stale" in s for s in rows["fp32"]["status"])
    assert rows["int8"]["step"] == 2 and any("has changed since" in s for s in rows["int8"]["status"])


def _unfinish(run, keep_best: bool):
    """An interrupted run: its last.pt is short of the planned steps (and no evaluation yet without best.pt)."""
    import torch

    from edgekd.train import checkpoint as ckpt_io

    ck = torch.load(run / "last.pt", weights_only=True)
    ck["total_steps"], ck["epoch"] = 1225, 0
    ckpt_io.save(run / "last.pt", ck)
    if not keep_best:
        (run / "best.pt").unlink()


def test_export_says_which_checkpoint_and_refuses_an_unfinished_last_pt(exported, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(exported, run, ignore=shutil.ignore_patterns("report", "model*"))
    res = run_cli(["export", run, "--precision", "fp32"])
    assert f"exporting {run / 'best.pt'} (step 2" in res.output
    _unfinish(run, keep_best=True)
    res = run_cli(["export", run, "--precision", "fp32"])
    assert "is unfinished (last.pt at step 2 of 1225); exporting best.pt" in res.output
    (run / "best.pt").unlink()
    res = run_cli(["export", run, "--precision", "fp32"], expect=2)
    assert "unfinished (last.pt at step 2 of 1225) and has no best.pt yet" in res.output and "--allow-unfinished" in res.output
    res = run_cli(["export", run, "--precision", "fp32", "--allow-unfinished"])
    assert "--allow-unfinished: exporting last.pt at step 2 of 1225" in res.output
    assert json.loads((run / "export.json").read_text())["checkpoint"] == "last.pt"


def test_export_json_records_only_what_it_wrote(exported, tmp_path):
    pytest.importorskip("onnx")
    try:
        import tensorrt  # noqa: F401

        pytest.skip("TensorRT is installed: the engine is built, so the format is what was written")
    except ImportError:
        pass
    run = tmp_path / "run"
    shutil.copytree(exported, run, ignore=shutil.ignore_patterns("report"))
    run_cli(["export", run, "--precision", "fp32", "--format", "tensorrt"], expect=2)
    exp = json.loads((run / "export.json").read_text())
    assert exp["format"] == "onnx" and exp["not_built"]["format"] == "tensorrt" and "TensorRT" in exp["not_built"]["why"]
    assert not list(run.glob("*.engine"))
