"""Task registry: one file per task, each with everything the task knows (head size, loss,
metrics, the arguments it needs from a data source, how to draw a prediction, export metadata).

Torch-free at import (losses import torch inside), so the bench can compute a task's metrics on
a device without torch.  In the manner of timm's ``register_model`` / ``create_model``.  The
built-in tasks are registered below by name with a lazy ``"module:Class"`` path: listing them
imports nothing (not even numpy), so the CLI and the config schema can read :func:`list_tasks`.
"""

from __future__ import annotations

from ..registry import Registry

#: name -> the Task subclass, or its "module:Class" path until first used (registration order)
TASKS = Registry("task")


def register_task(cls_or_name, path: str | None = None):
    """Register a task: ``register_task("name", "package.module:Class")`` (imported when first
    created), or as a class decorator ``@register_task`` on a :class:`~edgekd.tasks.base.Task` subclass."""
    if isinstance(cls_or_name, str):
        return TASKS.register(cls_or_name, path)
    return TASKS.register(cls_or_name.name, cls_or_name)


def list_tasks() -> list[str]:
    """The registered task names, in registration order."""
    return TASKS.names()


def task_class(name: str) -> type:
    """The Task subclass registered as ``name`` (importing its module on first use)."""
    return TASKS.get(name)


def all_sample_keys() -> tuple:
    """Every per-pixel sample key of every registered task (the first declaration of a name wins):
    what a sample is resized by where its task is not known (:func:`edgekd.bench.evaluate.prepare_sample`)."""
    keys: dict = {}
    for name in list_tasks():
        for key in task_class(name).sample_keys:
            keys.setdefault(key.name, key)
    return tuple(keys.values())


def create_task(name: str, **kwargs):
    """A task instance; ``kwargs`` are the task's arguments (those :meth:`Task.args_from_source` gives)."""
    return task_class(name)(**kwargs)


register_task("depth", "edgekd.tasks.depth:DepthTask")
register_task("segmentation", "edgekd.tasks.segmentation:SegmentationTask")
register_task("classification", "edgekd.tasks.classification:ClassificationTask")
register_task("colourisation", "edgekd.tasks.colourisation:ColourisationTask")
register_task("translation", "edgekd.tasks.translation:TranslationTask")
