"""Accuracy of a runner on validation data, next to the fp32 reference stored in the model's metadata."""

from __future__ import annotations

import json

from .evaluate import evaluate, open_samples
from .progress import progress_bar


def accuracy(runner, task, data, data_format, n, seed, hw, batch, show, direction="AtoB") -> dict:
    """The task's metrics of ``runner`` on the first ``n`` validation images of ``data`` (bench/evaluate.py)."""
    samples = open_samples(data, "val", hw, n, seed, data_format, task, direction)
    bar = progress_bar(len(samples), "accuracy", show)
    metrics = evaluate(lambda x: runner.infer(x)[0], task, samples, batch, progress=bar)
    bar.close()
    return {"images": len(samples), "data": data, "metrics": metrics}


def accuracy_vs_reference(runner, meta: dict, ev: dict, show_progress: bool) -> dict:
    """:func:`accuracy` on the model's own evaluation set-up ``ev``, with the fp32 reference and the difference."""
    task = ev["task"]
    acc = accuracy(runner, task, ev["data"], ev["data_format"], ev["val_size"] or ev["n"], ev["seed"], ev["hw"],
                   runner.accuracy_batch, show_progress, ev["direction"])
    ref = json.loads(meta.get("reference_metrics", "{}") or "{}")
    acc["reference_fp32"] = ref
    acc["primary_metric"] = task.primary_metric
    if task.primary_metric in ref:
        acc["delta_vs_reference"] = acc["metrics"][task.primary_metric] - ref[task.primary_metric]
    return acc
