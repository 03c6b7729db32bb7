"""Issue 24: probes that change nothing, `auto` strength that keeps its ratio, the projector's stated decay,
its fit (R^2) and --projection auto.  Tiny runs: 64x64 scenes, 1-2 steps an epoch."""

import json
import math

import pytest
import torch

from conftest import run_cli, tiny
from edgekd.config import load_profile
from edgekd.distill import Distiller
from edgekd.distill.projection_choice import choose_projection, debiased_linear_cka, heldout_r2
from edgekd.train.build import decay_shrinkage, weight_decay_for_shrinkage
from edgekd.train.projector_fit import memorising

TEACHER = ["--teacher", "random:resnet18"]


def read_jsonl(p):
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def _state(out):
    ck = torch.load(out / "last.pt", weights_only=True)
    return {**{f"s.{k}": v for k, v in ck["student"].items()}, **{f"e.{k}": v for k, v in ck["extra"].items()}}


def _assert_same_state(a, b):
    sa, sb = _state(a), _state(b)
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


# ------------------------------------------------------------------ diagnostics never change the run
def _train(out, disable_probes: bool, monkeypatch):
    from edgekd.train.loop import Trainer

    cfg = load_profile("jetson")
    cfg["data"]["image_size"] = [64, 64]
    cfg["train"].update(train_size=4, val_size=4, batch_size=4, epochs=2, workers=0, device="cpu", train_eval_size=0)
    cfg["distill"].update(teacher="random:resnet18", weight=1.0, spectral=2, spectral_weight=1.0, fit_images=4)
    if disable_probes:
        for name in ("_calibrate_and_diagnose", "_strength_record", "_fit_record"):
            monkeypatch.setattr(Trainer, name, lambda self, *a: {})
    Trainer(cfg, out, progress=False).run()
    monkeypatch.undo()


def test_a_run_with_probes_is_the_run_without_them(tmp_path, monkeypatch):
    """Step-0 calibration, the epoch-end strength probe and the projector-fit probe run the student (BatchNorm),
    the spectral term (its warm-started subspace) and the teacher: none of it may change training."""
    _train(tmp_path / "probed", False, monkeypatch)
    _train(tmp_path / "bare", True, monkeypatch)
    _assert_same_state(tmp_path / "probed", tmp_path / "bare")
    steps = read_jsonl(tmp_path / "probed" / "steps.jsonl")
    assert [s["total"] for s in steps] == [s["total"] for s in read_jsonl(tmp_path / "bare" / "steps.jsonl")]
    # a numeric weight stays what was given: never re-measured
    assert all("weight_distill" not in s for s in steps)
    assert [m["weight_distill"] for m in read_jsonl(tmp_path / "probed" / "metrics.jsonl")] == [1.0, 1.0]
    fit = json.loads((tmp_path / "probed" / "diagnostics.json").read_text())["projector_fit"]
    assert [f["epoch"] for f in fit] == [0, 1, 2] and all(math.isfinite(f["r2_train"] + f["r2_val"]) for f in fit)


# ------------------------------------------------------------------ auto strength, --projection auto, resume
def _recal_cfg(projection: str) -> dict:
    cfg = load_profile("jetson")
    cfg["data"]["image_size"] = [64, 64]
    cfg["train"].update(train_size=8, val_size=4, batch_size=4, epochs=2, workers=0, device="cpu", train_eval_size=0,
                        save_every_min=0.0)
    cfg["distill"].update(teacher="random:resnet18", projection=projection, spectral=2, recalibrate_every=1, fit_images=4)
    return cfg


class Stop(Exception):
    pass


def test_auto_weights_follow_the_ratio_and_resume_bitwise(tmp_path, monkeypatch):
    from edgekd.train.loop import Trainer

    straight, split, chosen = tmp_path / "straight", tmp_path / "split", tmp_path / "chosen"
    Trainer(_recal_cfg("auto"), straight, progress=False).run()
    after_check = Trainer._after_check

    def stop_at_step_3(self, bar):  # interrupted after step 3's checkpoint, mid-epoch
        after_check(self, bar)
        if self.step == 3:
            raise Stop

    monkeypatch.setattr(Trainer, "_after_check", stop_at_step_3)
    with pytest.raises(Stop):
        Trainer(_recal_cfg("auto"), split, progress=False).run()
    monkeypatch.undo()
    Trainer(_recal_cfg("auto"), split, resume=True, progress=False).run()
    _assert_same_state(straight, split)
    steps, again = read_jsonl(straight / "steps.jsonl"), read_jsonl(split / "steps.jsonl")
    assert [s["weight_distill"] for s in steps] == [s["weight_distill"] for s in again]
    diag = json.loads((straight / "diagnostics.json").read_text())
    assert json.loads((split / "diagnostics.json").read_text())["projector_fit"] == diag["projector_fit"]
    # re-measured every step: the weights move, each set so the ratio is the target on the batch it was measured on
    ws = [diag["weights"]["distill"]] + [s["weight_distill"] for s in steps]
    assert len(set(ws)) == len(ws)
    assert all(k in steps[0] for k in ("grad_ratio_distill", "grad_ratio_spectral", "weight_spectral"))
    choice = diag["projection_choice"]
    assert choice["requested"] == "auto" and choice["chosen"] in ("inverted", "traditional") and -1 <= choice["cka"] <= 1
    assert json.loads((straight / "config.json").read_text())["distill"]["projection"] == "auto"
    # the auto run is the run given its choice: the measurement drew nothing and changed nothing
    Trainer(_recal_cfg(choice["chosen"]), chosen, progress=False).run()
    _assert_same_state(straight, chosen)
    # the report says the choice, the decay and the fit over training
    from edgekd.report.page import report_run

    page = next(p for p in report_run(straight, predictions=False) if p.suffix == ".html").read_text()
    assert "--projection auto: " in page and "projector fit R^2" in page and "decay alone leaves" in page and "of P - P0" in page


def test_auto_weights_reach_the_ratio_on_the_batch_they_were_measured_on():
    from edgekd.train.calibrate import recalibrate
    from edgekd.train.strength import ratios

    class Model:
        weight, spectral_weight = 5.0, 2.0

        def weights(self):
            return {"distill": self.weight, "spectral": self.spectral_weight}

    m, norms = Model(), {"task": 2.0, "distill": 0.1, "spectral": 0.4}
    fields = recalibrate(m, norms, {"weight": "auto", "spectral_weight": 2.0, "grad_ratio": 0.3})
    assert fields["grad_ratio_distill"] == pytest.approx(0.25) and fields["weight_distill"] == pytest.approx(6.0)
    assert ratios(norms, m.weights())["distill"] == pytest.approx(0.3)
    assert m.spectral_weight == 2.0  # numeric: left alone


# ------------------------------------------------------------------ the projector's decay as a shrinkage
def test_shrinkage_is_what_decay_alone_leaves_of_the_projector(tmp_path):
    factors = [0.5, 1.0, 1.0, 0.7, 0.2, 0.01]
    wd = weight_decay_for_shrinkage(1e-2, factors, 0.1)
    assert decay_shrinkage(1e-2, factors, wd) == pytest.approx(0.1, rel=1e-9)
    assert weight_decay_for_shrinkage(1e-2, factors, 1.0) == 0.0
    out = tmp_path / "shrink"  # weight 0: the projector gets no gradient, only its decay
    run_cli(["distill", "--task", "depth", *TEACHER, *tiny(epochs=2, train=8, val=4), "--distill-weight", "0",
             "--projector-shrinkage", "0.01", "--warmup-steps", "2", "--out", out])  # a warm-up: the first lr is not the peak
    ck = torch.load(out / "last.pt", weights_only=True)["extra"]
    ratio = ck["distiller.projector.weight"][:, :, 0, 0] / ck["distiller.P0"]
    assert torch.allclose(ratio, torch.full_like(ratio, 0.01), rtol=1e-4)
    decay = json.loads((out / "diagnostics.json").read_text())["projector_decay"]
    assert decay["shrinkage"] == pytest.approx(0.01, rel=1e-6) and decay["weight_decay"] > 1
    spec = read_jsonl(out / "spectrum.jsonl")[-1]
    assert spec["effective_rank"] > 1 and "delta_effective_rank" in spec


# ------------------------------------------------------------------ measurements
def test_debiased_cka_is_one_for_a_rotation_and_near_zero_for_unrelated_features():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, 30, generator=g, dtype=torch.float64)
    Q, _ = torch.linalg.qr(torch.randn(30, 30, generator=g, dtype=torch.float64))
    assert debiased_linear_cka(X, 3.0 * X @ Q) == pytest.approx(1.0, abs=1e-9)
    # few rows, many channels: the plain estimator is biased high, the debiased one is not
    A, B = torch.randn(100, 300, generator=g, dtype=torch.float64), torch.randn(100, 700, generator=g, dtype=torch.float64)
    Ac, Bc = A - A.mean(0), B - B.mean(0)
    plain = float((Ac.t() @ Bc).pow(2).sum() / ((Ac.t() @ Ac).pow(2).sum().sqrt() * (Bc.t() @ Bc).pow(2).sum().sqrt()))
    assert plain > 0.5 and abs(debiased_linear_cka(A, B)) < 0.05


def test_choice_follows_the_threshold_and_heldout_fit_detects_a_linear_map():
    g = torch.Generator().manual_seed(1)
    zs = [torch.randn(4, 6, 3, 3, generator=g) for _ in range(2)]
    M = torch.randn(6, 5, generator=g)
    similar = [torch.einsum("bchw,cd->bdhw", z, M) for z in zs]
    unrelated = [torch.randn(4, 5, 3, 3, generator=g) for _ in range(2)]
    assert choose_projection(zs, similar, 0.5)["chosen"] == "traditional"
    assert choose_projection(zs, unrelated, 0.5)["chosen"] == "inverted"
    X = torch.randn(80, 6, generator=g, dtype=torch.float64)
    assert heldout_r2(X, X @ torch.randn(6, 4, generator=g, dtype=torch.float64)) == pytest.approx(1.0, abs=1e-9)


def test_fit_r2_of_the_projector_and_the_memorising_rule():
    torch.manual_seed(0)
    d = Distiller("fitnet", "inverted", student_channels=4, teacher_channels=6)
    zt = torch.randn(3, 6, 2, 2)
    with torch.no_grad():
        zs = d.projector(zt).detach()
    assert d.fit_r2(zs, zt) == pytest.approx(1.0, abs=1e-6)
    assert d.fit_r2(torch.randn(3, 4, 2, 2), zt) < 0.5
    assert memorising({"r2_train": 0.9, "r2_val": -1.8}) and not memorising({"r2_train": 0.9, "r2_val": 0.7})
    assert not memorising({"r2_train": -0.3, "r2_val": -0.7})  # a poor fit everywhere is not memorisation
