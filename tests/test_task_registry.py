"""Every registered task, through the Task interface only: a new task file and its registration
line are covered here without a line of test of its own."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from edgekd.config import key_choices
from edgekd.errors import EdgekdError
from edgekd.tasks import create_task, list_tasks, task_class

SIZE = (32, 32)
CFG = {"data": {"max_depth": 10.0, "image_size": list(SIZE)}}


@pytest.fixture(scope="module")
def source():
    from edgekd.data import open_dataset

    return open_dataset("synthetic", "val", SIZE, 2, 0)


def _task(name, source):
    return create_task(name, **task_class(name).args_from_source(source, CFG))


def _prediction(task, target, rng):
    """A plausible (B, C, ...) head output for a batch of targets: the activation of random logits."""
    import torch

    shape = (len(target), task.out_channels) + (tuple(np.shape(target)[-2:]) if task.dense else ())
    return task.activation(torch.from_numpy(rng.standard_normal(shape).astype(np.float32)))


def test_registry_lists_tasks_without_importing_them():
    code = "import sys, edgekd.tasks as t; names = t.list_tasks(); print(len(names), 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(len(list_tasks())), "False"]
    assert tuple(key_choices("model", "task")) == tuple(list_tasks())


def test_unknown_task_names_the_valid_ones():
    with pytest.raises(EdgekdError, match=r"unknown task 'dpeth'; use one of: .*depth"):
        create_task("dpeth")


@pytest.mark.parametrize("name", list_tasks())
def test_task_interface(name, source):
    import torch

    task = _task(name, source)
    assert task.name == name and task.out_channels >= 1
    samples = [source[i] for i in range(2)]
    target = torch.from_numpy(np.stack([np.asarray(task.target(s)) for s in samples]))
    pred = _prediction(task, target, np.random.default_rng(0))
    loss = task.loss(pred, target)
    assert loss.ndim == 0 and torch.isfinite(loss)

    m = task.metrics()
    m.update(pred.numpy(), target.numpy())
    computed = m.compute()
    assert task.table_metrics and task.table_metrics[0] == task.primary_metric
    assert set(task.table_metrics) <= set(computed)
    assert task.higher_is_better == (not task.lower_is_better(task.primary_metric))
    assert all(task.lower_is_better(k) for k in task.lower_is_better_metrics)


@pytest.mark.parametrize("name", list_tasks())
def test_task_draws_and_describes_its_output(name, source):
    task = _task(name, source)
    samples = [source[i] for i in range(2)]
    target = np.stack([np.asarray(task.target(s)) for s in samples])
    pred = _prediction(task, target, np.random.default_rng(1)).numpy()
    context = task.picture_context(samples)
    for p, s in zip(pred, samples):
        for picture in (task.to_picture(p, s, context), task.truth_picture(s, context)):
            if picture is not None:
                assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3
    assert isinstance(task.caption(pred[0], samples[0]), str)
    meta = task.metadata()
    assert meta["task"] == name and meta["out_channels"] == task.out_channels
    rng = task.output_range()
    assert meta.get("output_range") == rng
    if rng is not None:
        assert rng[0] < rng[1]


@pytest.mark.parametrize("name", list_tasks())
def test_prediction_figure(name, source, tmp_path):
    from edgekd.report.plots import _save, prediction_figure

    task = _task(name, source)
    samples = [source[i] for i in range(2)]
    target = np.stack([np.asarray(task.target(s)) for s in samples])
    pred = _prediction(task, target, np.random.default_rng(2)).numpy()
    assert _save(prediction_figure(task, samples, pred), tmp_path / "p.png").stat().st_size > 0
