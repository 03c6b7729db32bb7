"""Every registered task, through the Task interface only: a new task file and its registration
line are covered here without a line of test of its own."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from edgekd.config import RunConfig, key_choices
from edgekd.errors import EdgekdError
from edgekd.tasks import create_task, list_tasks, task_class

SIZE = (32, 32)
CFG = RunConfig.from_dict({"data": {"max_depth": 10.0, "image_size": list(SIZE)}})  # what args_from_source is given


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
    from edgekd.report.plots import prediction_figure, save_figure

    task = _task(name, source)
    samples = [source[i] for i in range(2)]
    target = np.stack([np.asarray(task.target(s)) for s in samples])
    pred = _prediction(task, target, np.random.default_rng(2)).numpy()
    assert save_figure(prediction_figure(task, samples, pred), tmp_path / "p.png").stat().st_size > 0


@pytest.mark.parametrize("name", list_tasks())
def test_a_task_declares_every_map_it_reads(name, source):
    """Resized, cropped and flipped through its own ``sample_keys``, the task's target still lines up with the image."""
    from edgekd.data.transforms import augment, resize_sample

    task = _task(name, source)
    keys = task.sample_keys
    assert keys[0].name == "image" and all(k.resize in ("bilinear", "nearest") and k.flip in ("mirror", "vector") for k in keys)
    s = resize_sample(augment(source[0], np.random.default_rng(0), keys, crop=task.may_crop), 16, 24, keys)
    assert task.input_image(s).shape[:2] == (16, 24)
    if task.dense:
        assert np.shape(task.target(s))[-2:] == (16, 24)  # a map the task reads but did not declare keeps its old size


@pytest.fixture
def normals_task(monkeypatch):
    import edgekd.tasks as tasks
    from edgekd.tasks.base import IMAGE, SampleKey, Task

    class NormalsTask(Task):  # made up: a field of (x, y, z) vectors per pixel, as surface normals are
        name = "normals-test"
        primary_metric = "mean_angle"
        lower_is_better_metrics = frozenset({"mean_angle"})
        sample_keys = (IMAGE, SampleKey("normals", resize="bilinear", flip="vector"))

    monkeypatch.setattr(tasks, "TASKS", tasks.TASKS.copy())  # restored after the test
    tasks.register_task(NormalsTask)
    return tasks.create_task("normals-test")


def test_a_flip_turns_a_vector_field_around(normals_task):
    from edgekd.bench.evaluate import prepare_sample
    from edgekd.data.transforms import augment
    from edgekd.tasks import all_sample_keys

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    normals = rng.standard_normal((4, 6, 3)).astype(np.float32)
    sample = {"image": image, "normals": normals, "depth": rng.random((4, 6)).astype(np.float32)}
    seed = next(s for s in range(100) if np.random.default_rng(s).random() < 0.5)  # a draw that flips
    out = augment(sample, np.random.default_rng(seed), normals_task.sample_keys)
    assert out["flipped"]
    np.testing.assert_array_equal(out["normals"][..., 0], -normals[:, ::-1, 0])  # right becomes left
    np.testing.assert_array_equal(out["normals"][..., 1:], normals[:, ::-1, 1:])  # up and depth-ward stay
    np.testing.assert_array_equal(out["geometric_image"], image[:, ::-1])
    np.testing.assert_array_equal(out["depth"], sample["depth"])  # not this task's map: left alone
    assert not normals_task.higher_is_better  # its primary metric is an error
    assert "normals" in {k.name for k in all_sample_keys()}
    resized = prepare_sample(sample, (8, 12))  # no task given: every registered task's maps
    assert resized["normals"].shape == (8, 12, 3) and resized["normals"].dtype == np.float32
    assert resized["depth"].shape == (8, 12)
