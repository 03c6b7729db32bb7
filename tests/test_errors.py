"""The table of bad inputs (docs/errors.md): one line naming the problem and the fix, exit code 2, no traceback."""

import os

import pytest
import torch

from conftest import TINY, run_cli

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
    return ["bench", write(t / "model.tflite", "x")], "unknown model type .tflite"


def case_synth_zero(t, run):
    return ["data", "synth", "--out", t / "s", "--n", "0"], "--n must be at least 1"


CASES = {name[5:]: fn for name, fn in list(globals().items()) if name.startswith("case_")}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("err") / "run"
    run_cli([*D, "--out", out])
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, tmp_path, small_run, capsys):
    args, expected = CASES[name](tmp_path, small_run)
    res = run_cli(args, expect=2)
    err = res.stderr.strip()
    assert expected in err, err
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    assert "Traceback" not in res.output
    assert not (tmp_path / "pwned").exists()


def test_table_has_at_least_25_mistakes():
    assert len(CASES) >= 25
