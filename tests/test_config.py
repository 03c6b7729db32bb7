"""Profiles and targets: shipped files, overrides, one-line refusals."""

import pytest

from edgekd.config import PROFILE_DIR, TARGET_DIR, list_profiles, load_profile, parse_override
from edgekd.errors import EdgekdError


def test_shipped_profiles_resolve():
    assert {"jetson", "mobile", "server"} <= set(list_profiles())
    for name in ("jetson", "mobile", "server"):
        cfg = load_profile(name)
        assert cfg["target"]["name"] and cfg["profile"]["name"] == name
        assert len(cfg["data"]["image_size"]) == 2


def test_resources_live_inside_the_package():
    # Found from an installed wheel, not only from a checkout.
    assert PROFILE_DIR.parent.parent.name == "edgekd" and TARGET_DIR.exists()


def test_overrides_and_sets():
    cfg = load_profile("jetson", {"train": {"lr": 0.5, "epochs": None}}, ("distill.spectral=4", "model.student=\"resnet18\""))
    assert cfg["train"]["lr"] == 0.5 and cfg["distill"]["spectral"] == 4 and cfg["model"]["student"] == "resnet18"
    assert cfg["train"]["epochs"] == 25  # None means: keep the profile's


def test_user_profile_inherits_defaults(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text('target = "android-arm64"\n[train]\nepochs = 3\n')
    cfg = load_profile(str(p))
    assert cfg["train"]["epochs"] == 3 and cfg["train"]["batch_size"] == 16 and cfg["target"]["threads"] == 4


@pytest.mark.parametrize("text,match", [
    ('target = "jetson-orin-nano"\n[train]\nepochz = 3\n', "unknown key train.epochz"),
    ('target = "jetson-orin-nano"\n[trian]\nepochs = 3\n', r"unknown section \[trian\]"),
    ('target = "jetson-orin-nano"\n[train]\nepochs = "three"\n', "must be an integer"),
    ('target = "jetson-orin-nano"\n[train]\nlr = -1.0\n', "out of range"),
    ('target = "jetson-orin-nano"\n[distill]\nmethod = "kd"\n', "is not one of"),
    ('target = "jetson-orin-nano"\n[data]\nimage_size = [64]\n', "must have 2 entries"),
    ('[train\nepochs = 3\n', "not valid TOML"),
    ('[train]\nepochs = 3\n', "names no target"),
    ('target = "toaster"\n', "unknown target"),
])
def test_bad_profiles(tmp_path, text, match):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(EdgekdError, match=match):
        load_profile(str(p))


def test_bad_override():
    with pytest.raises(EdgekdError, match="section.key=value"):
        parse_override("lr")
    with pytest.raises(EdgekdError, match="unknown key"):
        parse_override("train.lrr=1")
