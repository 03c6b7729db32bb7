"""The table of bad inputs (docs/errors.md): one line naming the problem and the fix, exit code 2, no traceback."""

import os
import sys
from pathlib import Path

import pytest
import torch

if __name__ == "__main__":  # run as a script (it rewrites docs/errors.md): tests/conftest.py is one folder up
    sys.path.insert(0, str(Path(__file__).parents[1]))
from conftest import TINY, run_cli  # noqa: E402

D = ["distill", "--task", "depth", "--teacher", "none", *TINY]  # a valid tiny run, to break one thing at a time


def write(p, text):
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def case_unknown_profile(t, run):
    return ["distill", "--profile", "jetsn"], "unknown profile 'jetsn'"


def case_malformed_toml(t, run):
    return ["distill", "--profile", write(t / "p.toml", "[train\n")], "is not valid TOML"


def case_unknown_key(t, run):
    return ["distill", "--profile", write(t / "p.toml", 'target = "x86-server"\n[train]\nepoch = 1\n')], "unknown key train.epoch"


def case_wrong_type(t, run):
    return ["distill", "--profile", write(t / "p.toml", 'target = "x86-server"\n[train]\nepochs = "2"\n')], "must be an integer"


def case_out_of_range(t, run):
    return [*D, "--lr", "100"], "out of range"


def case_profile_without_target(t, run):
    return ["distill", "--profile", write(t / "p.toml", "[train]\nepochs = 1\n")], "names no target"


def case_unknown_target(t, run):
    return ["distill", "--profile", write(t / "p.toml", 'target = "toaster"\n')], "unknown target 'toaster'"


def case_bad_set(t, run):
    return [*D, "--set", "train.lr"], "section.key=value"


def case_unknown_task(t, run):
    return ["distill", "--task", "dpeth"], "is not one of"


def case_unknown_student(t, run):
    return [*D, "--student", "mobilenetv2_1000"], "unknown student model 'mobilenetv2_1000'; did you mean"


def case_unknown_teacher(t, run):
    return [*D, "--teacher", "random:vit_base_patch32_2244"], "unknown teacher model"


def case_teacher_without_weights(t, run):
    return [*D, "--teacher", "resnet18"], "needs --teacher-weights FILE"


def case_teacher_weights_missing(t, run):
    return [*D, "--teacher", "resnet18", "--teacher-weights", t / "none.pth"], "does not exist"


def case_teacher_weights_do_not_fit(t, run):
    import timm

    f = t / "r34.pth"
    torch.save(timm.create_model("resnet34").state_dict(), f)
    return [*D, "--teacher", "resnet18", "--teacher-weights", f], "do not fit"


def case_teacher_checkpoint_missing(t, run):
    return [*D, "--teacher", t / "nope" / "best.pt"], "teacher checkpoint"


def case_missing_data_path(t, run):
    return [*D, "--data", t / "nowhere"], "does not exist"


def case_empty_data_folder(t, run):
    (t / "empty").mkdir()
    return [*D, "--data", t / "empty"], "is empty"


def case_unknown_data_layout(t, run):
    write(t / "junk" / "readme.txt", "hello")
    return [*D, "--data", t / "junk"], "cannot tell the dataset format"


def case_unknown_data_format(t, run):
    write(t / "junk" / "readme.txt", "hello")
    return [*D, "--data", t / "junk", "--data-format", "kitti"], "unknown --data-format"


def case_images_and_labels_do_not_pair(t, run):
    run_cli(["data", "synth", "--out", t / "s", "--n", "2", "--val-n", "1", "--image-size", "64", "64"])
    os.remove(t / "s" / "train" / "depth" / "00001.png")
    return [*D, "--data", t / "s"], "has no matching depth/00001.png"


def case_image_size_not_divisible(t, run):
    return [*D, "--image-size", "60", "64"], "not divisible by the stride 32"


def case_spectral_rank_too_large(t, run):
    return [*D, "--spectral", "320"], "nothing is suppressed"


def case_cuda_without_gpu(t, run):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    return [*D, "--device", "cuda"], "no CUDA GPU"


def case_output_not_writable(t, run):
    write(t / "file", "x")
    return [*D, "--out", t / "file" / "run"], "not writable"


def case_resume_without_checkpoint(t, run):
    return [*D, "--resume", "--out", t / "fresh"], "--resume"


def case_run_exists(t, run):
    return [*D, "--out", run], "already holds a run"


def case_export_other_task(t, run):
    return ["export", run, "--task", "segmentation"], "was trained for depth, not segmentation"


def case_export_no_checkpoint(t, run):
    (t / "run").mkdir()
    return ["export", t / "run"], "holds no best.pt or last.pt"


def case_corrupt_checkpoint(t, run):
    f = t / "broken.pt"
    f.write_bytes((run / "best.pt").read_bytes()[:1000])
    return ["export", f], "is corrupt or not a torch checkpoint"


def case_not_an_edgekd_checkpoint(t, run):
    f = t / "plain.pt"
    torch.save({"w": torch.zeros(2)}, f)
    return ["export", f], "is not an edgekd checkpoint"


def case_pickle_that_runs_code(t, run):
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {t / 'pwned'}",))

    f = t / "evil.pt"
    torch.save({"format": "edgekd-checkpoint", "x": Evil()}, f)
    return ["export", f], "refusing to load"


def case_onnx_not_onnx(t, run):
    return ["bench", write(t / "model.onnx", "not a model")], "is not a valid ONNX model"


def case_teacher_typo(t, run):
    return [*D[:3], "--teacher", "rando", *D[5:]], "unknown teacher 'rando'; did you mean random?"


def case_onnx_without_metadata(t, run):
    import onnx
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Relu", ["input"], ["output"])], "g",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 8, 8])])
    f = t / "plain.onnx"
    onnx.save(helper.make_model(g), str(f))
    return ["bench", f], "carries no edgekd metadata (task, input size, normalisation), so its accuracy cannot be judged; time it alone with --no-accuracy"


def case_backend_unavailable(t, run):
    run_cli(["export", run])
    return ["bench", run / "model.onnx", "--backend", "ort-cuda"], "is not available on this machine"


def case_backend_wrong_file(t, run):
    run_cli(["export", run])
    return ["bench", run / "model.onnx", "--backend", "tensorrt"], "needs a .engine file"


def case_bench_missing_model(t, run):
    return ["bench", t / "model.onnx"], "does not exist; export one"


def case_bench_unknown_suffix(t, run):
    return ["bench", write(t / "model.pb", "x")], "unknown model type .pb"


def case_tflite_not_tflite(t, run):
    pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed")
    return ["bench", write(t / "model.tflite", "not a model")], "is not a LiteRT/TFLite model (no TFL3 flatbuffer identifier)"


def case_bench_run_dir_without_models(t, run):
    (t / "empty-run").mkdir()
    return ["bench", t / "empty-run"], "holds no exported model file"


def case_backend_all_on_one_file(t, run):
    return ["bench", run / "best.pt", "--backend", "all"], "--backend all benches every file of a run directory"


def case_export_litert_without_converter(t, run):
    from edgekd.bench.runners.base import installed

    if installed("litert_torch"):
        pytest.skip("litert-torch is installed: the missing-converter line cannot be shown")
    return ["export", run, "--format", "tflite"], 'needs the LiteRT converter, which is not installed; pip install -e ".[litert]"'


def case_bench_compare_to_missing(t, run):
    return ["bench", t / "model.onnx", "--compare-to", t / "old.json"], "--compare-to"


def case_bench_compare_to_not_a_result(t, run):
    return ["bench", t / "model.onnx", "--compare-to", write(t / "config.json", '{"train": {}}')], "is not an edgekd bench result"


def case_synth_zero(t, run):
    return ["data", "synth", "--out", t / "s", "--n", "0"], "--n must be at least 1"


# --- issue 14: contradictions, files checked up front, values that were silently accepted, tracebacks


def case_random_teacher_with_weights(t, run):
    return [*D, "--teacher", "random", "--teacher-weights", t / "nowhere.pt"], "--teacher random and --teacher-weights"


def case_no_teacher_with_method(t, run):
    return [*D, "--method", "at"], "--teacher none and --method at contradict"


def case_checkpoint_teacher_with_weights(t, run):
    return [*D, "--teacher", run / "best.pt", "--teacher-weights", run / "best.pt"], "contradict each other"


def case_resume_and_overwrite(t, run):
    return [*D, "--resume", "--overwrite", "--out", run], "--resume and --overwrite contradict"


def case_resume_changes_the_recipe(t, run):
    return ["distill", "--resume", "--image-size", "64", "96", "--out", run], "--resume cannot change data.image_size"


def case_resume_changes_the_task(t, run):
    return ["distill", "--resume", "--task", "segmentation", "--out", run], "--resume cannot change model.task"


def case_distill_weight_negative(t, run):
    return [*D, "--teacher", "random:resnet18", "--distill-weight", "-1"], "--distill-weight = -1.0 is out of range"


def case_text_file_as_teacher(t, run):
    return [*D, "--teacher", write(t / "x.pt", "hello")], "is corrupt or not a torch checkpoint"


def case_text_file_as_checkpoint(t, run):
    return ["export", write(t / "x.pt", "hello\nworld\n")], "is corrupt or not a torch checkpoint"


def case_text_file_to_bench(t, run):
    return ["bench", write(t / "x.pt", "hello\nworld\n")], "is corrupt or not a torch checkpoint"


def case_random_bytes_checkpoint(t, run):
    f = t / "noise.pt"
    f.write_bytes(bytes(range(128, 256)) * 40)
    return ["export", f], "is corrupt or not a torch checkpoint"


def case_export_unsupported_opset(t, run):
    return ["export", run, "--opset", "9"], "--opset 9 is not supported"


def case_export_parity_size_zero(t, run):
    return ["export", run, "--parity-size", "0"], "Invalid value for '--parity-size'"


def case_export_calib_size_zero(t, run):
    return ["export", run, "--precision", "int8", "--calib-size", "0"], "Invalid value for '--calib-size'"


def case_export_unknown_float_node(t, run):
    return ["export", run, "--precision", "int8", "--calib-size", "2", "--eval-size", "2", "--exclude-nodes", "/no/such/Conv"], \
        "is not a node of mobilenetv2_100's graph"


def case_bench_val_size_zero(t, run):
    return ["bench", run / "best.pt", "--val-size", "0"], "Invalid value for '--val-size'"


def case_bench_min_iters_zero(t, run):
    return ["bench", run / "best.pt", "--min-iters", "0", "--min-time", "0"], "Invalid value for '--min-iters'"


def case_bench_batch_zero(t, run):
    return ["bench", run / "best.pt", "--batch", "0"], "Invalid value for '--batch'"


def case_bench_threads_zero(t, run):
    return ["bench", run / "best.pt", "--threads", "0"], "Invalid value for '--threads'"


def case_synth_into_non_empty_folder(t, run):
    write(t / "s" / "notes.txt", "mine")
    return ["data", "synth", "--out", t / "s", "--n", "1"], "is not empty; add --overwrite"


def case_synth_overwrite_foreign_folder(t, run):
    write(t / "s" / "notes.txt", "mine")
    return ["data", "synth", "--out", t / "s", "--n", "1", "--overwrite"], "did not write"


def case_synth_val_n_negative(t, run):
    return ["data", "synth", "--out", t / "s", "--val-n", "-1"], "--val-n -1: the validation split needs at least 1 scene"


def case_synth_val_n_zero(t, run):
    return ["data", "synth", "--out", t / "s", "--val-n", "0"], "--val-n 0: the validation split needs at least 1 scene"


def case_synth_out_under_a_file(t, run):
    return ["data", "synth", "--out", write(t / "file", "x") / "scenes", "--n", "1"], "is not writable (Not a directory"


def case_compare_out_under_a_file(t, run):
    return ["compare", *TINY, "--out", write(t / "file", "x") / "cmp"], "is not writable (Not a directory"


def case_compare_weights_file_missing(t, run):
    return ["compare", *TINY, "--teachers", "resnet18", "--teacher-weights", f"resnet18={t / 'none.pth'}", "--out", t / "c"], "does not exist"


def case_compare_named_teacher_without_weights(t, run):
    return ["compare", *TINY, "--teachers", "none,resnet18", "--out", t / "c"], "needs --teacher-weights resnet18=FILE"


def case_too_few_images(t, run):
    from PIL import Image

    (t / "one").mkdir()
    Image.new("RGB", (8, 8)).save(t / "one" / "a.png")
    return [*D, "--task", "colourisation", "--data", t / "one"], "holds 1 image, too few"


def case_unknown_option_value(t, run):
    return ["data", "synth", "--out", t / "s", "--n", "ten"], "Invalid value for '--n'"


def case_student_weights_of_another_model(t, run):
    import timm

    f = t / "resnet18.pth"
    torch.save(timm.create_model("resnet18").state_dict(), f)
    return [*D, "--student-weights", f], "student weights"


def case_student_without_packaged_weights(t, run):
    return [*D, "--student", "resnet18", "--student-weights", "imagenet"], "no package ships ImageNet weights for student resnet18"


def case_teacher_cache_with_random_crops(t, run):
    return ["distill", "--task", "segmentation", "--teacher", "random:resnet18", *TINY, "--set", "distill.cache_teacher=on"], \
        "random crops change the teacher's input"


def case_distill_weight_not_a_number(t, run):
    return [*D[:4], "--teacher", "random:resnet18", *TINY, "--distill-weight", "strong"], "neither a number nor 'auto'"


def case_export_unfinished_run(t, run):
    import json
    import shutil

    part = t / "part"  # an interrupted run: last.pt two steps into a 1225-step plan, no evaluation yet
    part.mkdir()
    shutil.copy(run / "last.pt", part / "last.pt")
    shutil.copy(run / "config.json", part / "config.json")
    (part / "checkpoints.json").write_text(json.dumps({"last.pt": {"step": 2, "epoch": 0, "total_steps": 1225, "epochs": 25}}))
    return ["export", part], "is unfinished (last.pt at step 2 of 1225) and has no best.pt yet"


def case_compare_grid_of_another_recipe(t, run):
    import json
    import shutil

    from conftest import tiny

    cell = t / "cmp" / "runs" / "none" / "seed0"
    cell.mkdir(parents=True)
    shutil.copy(run / "config.json", cell / "config.json")  # a 1-epoch run of the grid already in --out
    return ["compare", "--task", "depth", "--teachers", "none", "--seeds", "1", *tiny(epochs=2), "--out", t / "cmp"], \
        "holds runs of another recipe: train.epochs (1 -> 2)"


def case_compare_seed(t, run):
    return ["compare", "--task", "depth", "--teachers", "none", "--seeds", "1", *TINY, "--seed", "5", "--out", t / "cmp"], \
        "compare does not use --seed 5"


def case_eight_bit_depth_png(t, run):
    import numpy as np
    from PIL import Image

    d = t / "d8"
    d.mkdir()
    for split in ("train", "test"):
        Image.fromarray(np.zeros((8, 10, 3), np.uint8)).save(d / f"{split}.jpg")
        Image.fromarray(np.full((8, 10), 200, np.uint8)).save(d / f"{split}_d.png")
        (d / f"{split}.csv").write_text(f"{split}.jpg,{split}_d.png\n")
    return [*D, "--data", d, "--out", t / "run"], "8-bit depth PNG (values 200-200)"
def case_student_typo_by_prefix(t, run):
    return [*D, "--student", "mobilenetv2_10"], "did you mean mobilenetv2_100"


def case_checkpoint_with_nan_weights(t, run):
    ck = torch.load(run / "last.pt", weights_only=True)
    ck["student"][next(iter(ck["student"]))].fill_(float("nan"))
    t.mkdir(parents=True, exist_ok=True)
    torch.save(ck, t / "nan.pt")
    return ["export", t / "nan.pt"], "holds NaN or infinite weights"


def case_depth_png_of_8_bits(t, run):
    import sys
    from pathlib import Path

    import numpy as np

    sys.path.insert(0, str(Path(__file__).parents[1] / "faults"))
    import faultlib

    faultlib.write_depth_list(t / "d", depth=np.full((16, 16), 25, np.uint8))
    return ["data", "inspect", t / "d", "--task", "depth"], "is 8-bit: it cannot hold millimetres"


def case_profile_not_utf8(t, run):
    p = t / "p.toml"
    t.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b'target = "x86-server"\n# \xff\xfe\n')
    return ["distill", "--profile", p], "not UTF-8 text"


CASES = {name[5:]: fn for name, fn in list(globals().items()) if name.startswith("case_")}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("err") / "run"
    run_cli([*D, "--out", out])
    return out


def _tree(*roots) -> dict:
    """Every file under ``roots`` with its size and modification time (what 'nothing was touched' means)."""
    out = {}
    for root in roots:
        for p in sorted(root.rglob("*")):
            out[str(p)] = (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else None
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, tmp_path, small_run, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a refused run without --out must not leave runs/ behind (issue 14, item 9)
    args, expected = CASES[name](tmp_path, small_run)
    before = _tree(tmp_path, small_run)
    res = run_cli(args, expect=2)
    err = res.stderr.strip()
    assert expected in err, err
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    assert "Traceback" not in res.output
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "runs").exists()
    after = _tree(tmp_path, small_run)
    # Nothing written, nothing removed (export of the good run only fails after its own checks).
    assert after == before, sorted(set(after.items()) ^ set(before.items()))


def test_random_bytes_are_corrupt_not_a_security_risk(tmp_path):
    """In a real process: torch's warning about the odd pickle protocol must not add lines to the one-line error."""
    import subprocess
    import sys

    f = tmp_path / "noise.pt"
    f.write_bytes(bytes(range(128, 256)) * 40)  # starts like a pickle, then nonsense (torch warns about "protocol 129")
    p = subprocess.run([sys.executable, "-m", "edgekd", "export", str(f)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert "is corrupt" in p.stderr and "could run code" not in p.stderr


def test_table_has_at_least_25_mistakes():
    assert len(CASES) >= 25


def test_docs_have_a_row_per_mistake():
    """docs/errors.md lists every case above (regenerate its table with: python tests/cli/test_errors.py)."""
    from pathlib import Path

    doc = (Path(__file__).parents[2] / "docs" / "errors.md").read_text()
    missing = [n for n in sorted(CASES) if f"| {n.replace('_', ' ')} |" not in doc]
    assert not missing, f"add rows for {missing} (python tests/cli/test_errors.py rewrites the table)"


def _doc_rows() -> list:
    """Run every case and return its table row, with scratch paths written DIR and the run RUN."""
    import tempfile
    from pathlib import Path

    rows = []
    with tempfile.TemporaryDirectory() as d:
        base = Path(d)
        run = base / "run"
        run_cli([*D, "--out", run])
        for name in sorted(CASES):
            t = base / "cases" / name
            t.mkdir(parents=True)
            cwd = os.getcwd()
            os.chdir(t)
            try:
                args, _ = CASES[name](t, run)
                err = run_cli(args, expect=2).stderr.strip()
            except BaseException as e:  # a case that cannot be shown here (pytest.skip: a GPU is present)
                print(f"skipped {name}: {type(e).__name__}")
                continue
            finally:
                os.chdir(cwd)
            rows.append(f"| {name.replace('_', ' ')} | `{err.replace(str(t), 'DIR').replace(str(run), 'RUN')}` |")
    return rows


if __name__ == "__main__":  # rewrite the table of docs/errors.md from the cases above
    doc = Path(__file__).parents[2] / "docs" / "errors.md"
    lines = doc.read_text().splitlines()
    start = lines.index("| mistake | message |")
    end = next((i for i in range(start + 2, len(lines)) if not lines[i].startswith("|")), len(lines))
    lines[start + 2 : end] = _doc_rows()
    doc.write_text("\n".join(lines) + "\n")
    print(f"wrote {doc}")
