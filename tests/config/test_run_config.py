"""The typed run config: the dict files hold <-> RunConfig, and the migration of configs older edgekd versions wrote."""

from __future__ import annotations

import dataclasses
import json

import pytest

from edgekd.config import MIGRATIONS, PARTS, RunConfig, effective_warmup, list_profiles, load_profile, section_keys


@pytest.mark.parametrize("name", list_profiles())
def test_a_resolved_config_round_trips_through_run_config(name):
    cfg = load_profile(name)
    run = RunConfig.from_dict(cfg)
    assert run.to_dict() == cfg and json.loads(json.dumps(run.to_dict())) == cfg  # what config.json and checkpoints hold
    assert run.train.lr == cfg["train"]["lr"] and run.target.name == cfg["target"]["name"] and run.profile.name == name
    assert RunConfig.coerce(run) is run and RunConfig.coerce(cfg) == run


def test_the_object_shares_nothing_with_the_dict_it_was_read_from():
    cfg = load_profile("jetson")
    run = RunConfig.from_dict(cfg)
    cfg["data"]["image_size"].append(7)
    assert run.data.image_size == [256, 320]
    run.to_dict()["data"]["image_size"].append(9)
    assert run.data.image_size == [256, 320]


def test_an_old_checkpoints_config_is_migrated_to_what_that_version_did():
    """A config written before a key existed reads as that version behaved, not as today's default."""
    old = load_profile("jetson")
    for section, key in MIGRATIONS:
        del old[section][key]
    run = RunConfig.from_dict(old)
    assert run.train.warmup_fraction == 1.0  # the warm-up was used as given (schema: 0.1)
    assert run.distill.teacher_tap == "raw"  # teachers gave features without the final norm (schema: norm)
    assert run.model.student_weights == "none"  # students started from random weights (schema: imagenet)
    assert effective_warmup(old["train"], 100) == effective_warmup(run.train, 100) == (50, "")
    for section, key in MIGRATIONS:
        assert key in section_keys(section), f"a migration names {section}.{key}, which the schema does not have"


def test_a_partial_or_stale_dict_takes_the_defaults_and_drops_unknown_keys():
    run = RunConfig.from_dict({"model": {"task": "segmentation"}, "train": {"no_such_key": 1}})
    assert run.model.task == "segmentation" and run.model.student == "mobilenetv2_100" and run.train.epochs == 25
    assert "no_such_key" not in run.to_dict()["train"] and list(run.to_dict()) == list(PARTS)
    assert "arch" not in run.to_dict()["target"]  # a key without a default is written only when set


def test_cells_are_derived_with_replace_and_leave_the_base_alone():
    from edgekd.train.grid import cell_config, cell_run_config, grid_cells

    base = RunConfig.from_dict(load_profile("jetson"))
    cell = next(c for c in grid_cells(["random"], ["cosine"], ["traditional"], [2]))
    run = cell_run_config(base, cell, 3, None)
    assert (run.distill.teacher, run.distill.method, run.distill.projection, run.distill.spectral, run.train.seed) == (
        "random", "cosine", "traditional", 2, 3)
    assert base.distill.method == "fitnet" and base.train.seed == 0
    assert dataclasses.replace(run) == run and cell_config(base.to_dict(), cell, 3, None) == run.to_dict()
