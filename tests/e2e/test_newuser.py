"""A new user's path (issue 15): warm-up scaled to the run, help that answers, --print-config, a full-recipe hint
that works, export that follows the profile, threads, an install without torch."""

import json
import shlex

import pytest
import torch

from conftest import TINY, run_cli, tiny
from edgekd.data.formats import list_data_formats


def read_jsonl(p):
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def test_warmup_is_scaled_to_a_short_run(tmp_path):
    out = tmp_path / "w"
    # 8 images, batch 4, 1 epoch = 2 steps; the profile's 50 warm-up steps would keep the lr at 2-4% of its peak
    res = run_cli(["distill", "--task", "depth", "--teacher", "none", *TINY, "--lr", "1e-3", "--out", out])
    assert "warm-up 50 steps is longer than 10% of this run's 2 steps; using 1" in res.stderr
    lrs = [s["lr"] for s in read_jsonl(out / "steps.jsonl")]
    assert max(lrs) > 0.5e-3
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["train"]["warmup_steps"] == 50 and cfg["train"]["warmup_fraction"] == 0.1


def test_explicit_warmup_steps_are_used_as_given():
    from edgekd.config import effective_warmup

    res = run_cli(["distill", "--warmup-steps", "30", "--print-config"])
    train = json.loads(res.stdout)["train"]
    assert train["warmup_steps"] == 30 and train["warmup_fraction"] == 1.0
    assert effective_warmup(train, 100) == (30, "")
    steps, note = effective_warmup(train, 20)
    assert steps == 20 and "covers the whole run" in note
    assert effective_warmup({"warmup_steps": 50, "warmup_fraction": 0.1}, 1225) == (50, "")  # the full recipe keeps its warm-up


def test_print_config_prints_the_recipe_and_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = run_cli(["distill", "--profile", "mobile", "--epochs", "3", "--set", "train.lr=3e-4", "--dry-run", "--out", "r"])
    cfg = json.loads(res.stdout)
    assert cfg["train"]["epochs"] == 3 and cfg["train"]["lr"] == 3e-4 and cfg["model"]["student"] == "efficientnet_lite0"
    assert cfg["target"]["name"] == "android-arm64" and cfg["export"]["precision"] == "int8"
    assert list(tmp_path.iterdir()) == []


def test_help_shows_defaults_formats_and_the_workflow():
    top = run_cli(["--help"]).output
    assert "edgekd export runs/quick" in top and "edgekd bench runs/quick/model.onnx" in top and "--print-config" in top
    h = " ".join(run_cli(["distill", "--help"]).output.split())
    for fmt in list_data_formats():
        assert fmt in h
    assert "[the profile's: 25]" in h and "jetson 256x320, mobile 192x256, server 480x640" in h and "[default: jetson]" in h
    b = " ".join(run_cli(["bench", "--help"]).output.split())
    assert "--no-accuracy" in b and "any ONNX model" in b


def test_compare_takes_distill_option_names():
    # the same names (--teacher, --method, --projection, --spectral) mean the same thing in both verbs
    res = run_cli(["compare", "--teacher", "none", "--method", "fitx", "--projection", "inverted", "--spectral", "2", "--out", "x"], expect=2)
    assert "unknown method 'fitx' in --methods" in res.stderr
    res = run_cli(["compare", "--teacher", "rando", "--out", "x"], expect=2)
    assert "did you mean random?" in res.stderr


def test_full_recipe_hint_is_a_command_that_works(tmp_path):
    from edgekd.commands.distill import full_recipe_command
    from edgekd.config import load_profile

    prof = tmp_path / "my recipe.toml"
    prof.write_text('target = "x86-server"\n[train]\nepochs = 7\n')
    weights = tmp_path / "w.pth"
    torch.save({}, weights)  # a file named for an option must exist (issue 14), even for --print-config
    small = {"model": {"task": "segmentation"}, "data": {"data": str(tmp_path), "image_size": [64, 64]},
             "distill": {"teacher": "resnet18", "teacher_weights": str(weights), "spectral": 2, "method": "at"},
             "train": {"epochs": 1, "train_size": 8, "lr": 3e-4}}
    cmd = full_recipe_command(load_profile(str(prof), small))
    args = shlex.split(cmd)
    assert args[:4] == ["edgekd", "distill", "--profile", str(prof)]
    for opt, val in [("--teacher-weights", str(weights)), ("--spectral", "2"), ("--data", str(tmp_path)), ("--method", "at"),
                     ("--task", "segmentation"), ("--lr", "0.0003")]:
        assert args[args.index(opt) + 1] == val, opt
    assert "--epochs" not in args and "--image-size" not in args
    # the printed command parses and resolves to the same recipe at the profile's full size
    cfg = json.loads(run_cli([*args[1:], "--print-config"]).stdout)
    assert cfg["distill"]["teacher_weights"] == str(weights) and cfg["distill"]["spectral"] == 2
    assert cfg["train"]["epochs"] == 7 and cfg["data"]["image_size"] == [256, 320] and cfg["data"]["data"] == str(tmp_path)


def test_threads_option():
    import torch

    from edgekd.train.threads import set_threads

    before = torch.get_num_threads()
    try:
        set_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    res = run_cli(["distill", "--threads", "0", *TINY, "--teacher", "none"], expect=2)
    assert "--threads 0 must be at least 1" in res.stderr


def test_export_follows_the_profile(depth_run, depth_onnx):
    # the tiny runs use the jetson profile, whose target runs fp16: export writes it beside the fp32 model
    rep = json.loads((depth_run / "export.json").read_text())
    assert rep["precision"] == "fp16" and (depth_run / "model.fp16.onnx").exists() and depth_onnx.exists()
    assert rep["fp16"]["parity"]["atol"] >= 0.02


CORE_ONLY = """
import sys
BLOCK = {"torch", "torchvision", "timm", "onnx", "h5py", "matplotlib", "tqdm", "scipy"}  # everything outside the core install
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCK:
            raise ModuleNotFoundError("No module named " + repr(name), name=name)
sys.meta_path.insert(0, _Block())
from edgekd.cli import main
sys.argv = ["edgekd"] + sys.argv[1:]
main()
"""

FAST_BENCH = ["--min-iters", "3", "--min-time", "0", "--warmup-iters", "1", "--warmup-time", "0", "--val-size", "2", "--quiet"]


def test_core_dependencies_are_enough_to_bench(depth_onnx, tmp_path):
    """Only the core install's packages importable: bench (with accuracy on the embedded scenes) works;
    training says which extra to install, in one line."""
    import subprocess
    import sys

    script = tmp_path / "core_only.py"
    script.write_text(CORE_ONLY)
    p = subprocess.run([sys.executable, str(script), "bench", str(depth_onnx), "--json", str(tmp_path / "r.json"), *FAST_BENCH],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert json.loads((tmp_path / "r.json").read_text())["accuracy"]["images"] == 2
    p = subprocess.run([sys.executable, str(script), "distill", "--out", str(tmp_path / "r")], capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and "Traceback" not in p.stderr and "pip install 'edgekd[train]'" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_pyproject_core_is_torch_free_and_dev_installs_everything():
    import tomllib
    from pathlib import Path

    proj = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    names = lambda deps: {d.split(">")[0].split(";")[0].split("[")[0].strip() for d in deps}  # noqa: E731
    core = names(proj["dependencies"])
    assert {"numpy", "onnxruntime", "click"} <= core and not core & {"torch", "torchvision", "timm", "onnx", "matplotlib"}
    assert {"torch", "timm", "onnx", "tqdm", "matplotlib"} <= names(proj["optional-dependencies"]["train"])
    assert "edgekd[train]" in proj["optional-dependencies"]["dev"]


@pytest.mark.slow
def test_core_install_in_a_fresh_venv_benches_without_torch(depth_onnx, tmp_path):
    """pip install <repo> (core dependencies from the registry) into a fresh venv: no torch, and bench runs."""
    import subprocess
    import sys
    from pathlib import Path

    venv = tmp_path / "venv"
    clean = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home())}  # no PYTHONPATH: only what the venv holds
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    py = str(venv / "bin" / "python")
    repo = str(Path(__file__).parents[2])
    p = subprocess.run([py, "-m", "pip", "install", "-q", repo], capture_output=True, text=True, timeout=900, env=clean)
    assert p.returncode == 0, p.stderr[-2000:]
    p = subprocess.run([py, "-c", "import torch"], capture_output=True, text=True, cwd=tmp_path, env=clean)
    assert p.returncode != 0 and "No module named 'torch'" in p.stderr
    out = tmp_path / "r.json"
    p = subprocess.run([py, "-m", "edgekd", "bench", str(depth_onnx), "--json", str(out), *FAST_BENCH],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path, env=clean)
    assert p.returncode == 0, p.stderr[-2000:]
    r = json.loads(out.read_text())
    assert r["latency"]["batch1"]["iters"] >= 3 and r["accuracy"]["images"] == 2
    assert str(venv) in subprocess.run([py, "-c", "import edgekd; print(edgekd.__file__)"], capture_output=True, text=True,
                                       cwd=tmp_path, env=clean).stdout


def test_progress_speaks_in_plain_lines_with_a_run_eta(tmp_path):
    """Not a terminal: no bar updates; one line per epoch with step counts and the whole-run ETA; the
    scene rendering is announced."""
    out = tmp_path / "p"
    args = ["distill", "--task", "depth", "--teacher", "none", *tiny(epochs=2)]
    res = run_cli([a for a in args if a != "--quiet"] + ["--out", out])
    text = res.output
    assert "\r" not in text
    assert "rendering 8 training scenes at 64x64" in text
    assert "epoch 1/2 (step 2/4) [run ETA " in text and "epoch 2/2 (step 4/4):" in text


def test_gpu_recipe_on_cpu_is_warned(tmp_path):
    from edgekd.config import load_profile
    from edgekd.preflight import gpu_recipe_warning

    # said before any scene is rendered (tests/e2e/test_first_minute.py), from the recipe alone
    assert "is meant for a GPU" in gpu_recipe_warning(load_profile("jetson"), 795)
    small = load_profile("jetson", {"data": {"image_size": [64, 96]}, "train": {"epochs": 2}})
    assert gpu_recipe_warning(small, 64) == ""


@pytest.fixture(scope="module")
def reported_run(depth_run, depth_onnx, tmp_path_factory):
    """A copy of the tiny run, benched (JSON) and reported."""
    import shutil

    run = tmp_path_factory.mktemp("report") / "run"
    shutil.copytree(depth_run, run, ignore=shutil.ignore_patterns("report"))
    run_cli(["bench", run / "model.onnx", "--json", run / "bench-fp32.json", *FAST_BENCH])
    run_cli(["report", run])
    return run


def test_run_report_shows_the_deployment(reported_run):
    run = reported_run
    md = (run / "report" / "report.md").read_text()
    assert "## Deployment" in md and "| precision | file | size (MB) | p50 (ms)" in md
    fp32 = next(line for line in md.splitlines() if line.startswith("| fp32 | model.onnx |"))
    bench = json.loads((run / "bench-fp32.json").read_text())
    assert f"{bench['latency']['batch1']['p50_ms']:.2f}" in fp32 and "bench, 2 images" in fp32 and "+0.0000" in fp32
    assert "| fp16 | model.fp16.onnx |" in md  # exported, not benched: its row says so with dashes
    assert (run / "report" / "deployment.png").exists()
    assert "predictions of best.pt (after epoch" in md and "Shaded:" in md
    page = (run / "report" / "report.html").read_text()
    assert "<table" in page and "<th>p50 (ms)</th>" in page


def test_report_plot_rules():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from edgekd.report.page import _metrics_text
    from edgekd.report.plots import _draw_key, loss_scale
    from edgekd.tasks import create_task

    assert loss_scale([5.3, 4.2, 6.1]) == "linear" and loss_scale([5.0, 0.3]) == "log"
    assert "top5" not in _metrics_text({"top1": 0.5, "top5": 1.0}, num_classes=3)
    assert "top5" in _metrics_text({"top1": 0.5, "top5": 0.9}, num_classes=10)
    # The legend names only the classes shown (truth or prediction), not every class of the task.
    task = create_task("segmentation", num_classes=3, class_names=["floor", "wall", "cube"])
    labels = np.array([[0, 2]])
    logits = np.eye(3, dtype=np.float32)[labels].transpose(2, 0, 1)  # (classes, H, W), argmax = labels
    fig, axes = plt.subplots(2, 1, squeeze=False)
    _draw_key(fig, axes, task.figure_key([{"labels": labels}], [logits], {}))
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["floor", "cube"]
    plt.close(fig)


BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def test_report_page_in_a_headless_browser(reported_run, tmp_path):
    import shutil
    import subprocess

    import numpy as np
    from PIL import Image

    browser = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if browser is None:
        pytest.skip("no headless browser installed (chromium); apt-get install chromium to run this check")
    run = reported_run
    page = run / "report" / "report.html"
    p = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
                       capture_output=True, text=True, timeout=120)
    dom = p.stdout
    assert p.returncode == 0 and "<h2>Deployment</h2>" in dom, p.stderr[-1000:]
    assert "<tbody>" in dom  # the browser parsed the deployment table as a table (it inserts tbody)
    for src in ("curves.png", "spectrum.png", "predictions.png", "deployment.png"):
        assert f'src="{src}"' in dom
        with Image.open(run / "report" / src) as im:
            assert im.size[0] > 100
    shot = tmp_path / "page.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}", "--window-size=1200,2000",
                    page.as_uri()], capture_output=True, timeout=120)
    with Image.open(shot) as im:  # the page rendered: not a blank screen
        assert len(np.unique(np.asarray(im.convert("L")))) > 20
