"""The model card (edgekd/card.py): the contract export writes into every file and bench reads back, torch-free."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edgekd.card import ModelCard, engine_card_path
from edgekd.config import load_profile
from edgekd.errors import EdgekdError
from edgekd.tasks import create_task, list_tasks

SOURCE = {"checkpoint": "best.pt", "checkpoint_step": 120, "checkpoint_sha256": "ab" * 32}


@pytest.mark.parametrize("name", list_tasks())
def test_a_run_s_card_survives_its_props(name):
    task = create_task(name, num_classes=3, class_names=["sky", "road", "car"])
    ckpt = {"task_args": {"num_classes": 3, "class_names": ["sky", "road", "car"]}, "metrics": {task.primary_metric: 0.5, "per_class": [1, 2]}}
    card = ModelCard.of_run(task, load_profile("jetson"), ckpt, "fp16", SOURCE)
    props = card.to_props()
    assert all(isinstance(v, str) for v in props.values())  # what every file's metadata holds
    assert props["task"] == name and props["precision"] == "fp16" and props["checkpoint_step"] == "120"
    assert json.loads(props["reference_metrics"]) == {task.primary_metric: 0.5}  # per-class lists stay out
    back = ModelCard.from_props(props)
    assert back.to_props() == props and back.is_edgekd and back.task == name
    assert back.input_hw == tuple(load_profile("jetson")["data"]["image_size"])
    assert back.reference_eval["n"] == load_profile("jetson")["train"]["val_size"]


def test_a_foreign_or_partial_card_reads_without_failing():
    assert not ModelCard.from_props({}).is_edgekd and not ModelCard.from_props({"producer": "x"}).is_edgekd
    card = ModelCard.from_props({"task": "depth", "input_shape": "[1, 48, 64, 3]", "layout": "NHWC", "output_layout": "NHWC",
                                 "int8_drop": "0.01"})
    assert card.is_edgekd and card.input_hw == (48, 64) and card.precision == "fp32" and card.reference_eval == {}
    assert card.extra == {"output_layout": "NHWC", "int8_drop": "0.01"}  # kept as they are
    assert card.to_props()["output_layout"] == "NHWC"


def test_a_damaged_card_is_refused_in_one_line():
    with pytest.raises(EdgekdError, match="reference_eval is not JSON") as e:
        ModelCard.from_props({"task": "depth", "reference_eval": "{not json"}, "model.onnx")
    assert "\n" not in str(e.value) and str(e.value).startswith("model.onnx")


def test_an_engine_keeps_its_card_beside_it(tmp_path):
    assert engine_card_path(tmp_path / "model.int8.engine") == tmp_path / "model.int8.engine.json"


def test_reading_a_card_needs_neither_torch_nor_numpy():
    code = "import sys, edgekd.card; print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
