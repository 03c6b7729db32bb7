"""Long waits speak (issue 25): rendered scenes are cached on disk and not rendered again by a second run or a --resume;
rendering says how far it is; a redirected log has a line at least every minute of training."""

import json

from conftest import run_cli, tiny

RUN = ["distill", "--task", "depth", "--teacher", "none", "--student-weights", "none", *tiny(epochs=1)]


def _metrics(out):
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def test_a_second_run_and_a_resume_read_the_scenes_from_the_cache(tmp_path, monkeypatch):
    from edgekd.data import rendered_scenes

    monkeypatch.setenv("EDGEKD_CACHE", str(tmp_path / "cache"))
    first = tmp_path / "a"
    run_cli([*RUN, "--out", first])
    files = list((tmp_path / "cache" / "scenes").rglob("*.npz"))
    assert len(files) == 8 + 4  # every training and validation scene, one file each

    def boom(*a, **k):
        raise AssertionError("a cached scene was rendered again")

    monkeypatch.setattr(rendered_scenes, "render_scene", boom)
    second = tmp_path / "b"
    res = run_cli([a for a in RUN if a != "--quiet"] + ["--out", second])
    assert "8 of 8 training scenes at 64x64 read from the scene cache" in res.output and str(tmp_path / "cache") in res.output
    assert _metrics(first) == _metrics(second)  # the cached scenes are the rendered ones, bit for bit
    run_cli(["distill", "--resume", "--epochs", "2", "--out", second, "--quiet"])
    assert _metrics(second)[-1]["step"] == 4


def test_the_cache_is_keyed_by_size_seed_and_renderer(tmp_path, monkeypatch):
    from edgekd.data import scene_cache

    monkeypatch.setenv("EDGEKD_CACHE", str(tmp_path))
    a = scene_cache.scene_folder(64, 64, 0, "train")
    assert a != scene_cache.scene_folder(64, 96, 0, "train") != scene_cache.scene_folder(64, 64, 1, "train")
    assert scene_cache.renderer_version() in str(a)
    (a / "000000.npz").parent.mkdir(parents=True)
    (a / "000000.npz").write_bytes(b"torn")  # a damaged file is rendered again, not trusted
    assert scene_cache.load(a, 0) is None
    monkeypatch.setenv("EDGEKD_CACHE", "off")
    assert scene_cache.scene_folder(64, 64, 0, "train") is None


def test_rendering_reports_progress_with_an_eta(tmp_path, monkeypatch):
    from edgekd.train import build

    monkeypatch.setattr(build._RenderProgress, "EVERY_S", 0.0)
    res = run_cli([a for a in RUN if a != "--quiet"] + ["--out", tmp_path / "r"])
    assert "rendering 8 training scenes at 64x64" in res.output
    assert "rendering training scenes: 1/8 (12%), ETA" in res.output


def test_a_redirected_log_has_a_line_while_training(tmp_path, monkeypatch):
    from edgekd.train import loop

    monkeypatch.setattr(loop, "LOG_EVERY_S", 0.0)  # every minute in a real log; here every step
    res = run_cli([a for a in RUN if a != "--quiet"] + ["--out", tmp_path / "r"])
    assert "epoch 1/1 step 1/2: total " in res.output and "[run ETA" in res.output
