"""Accuracy of a runner on validation data, next to an fp32 reference measured on **the same images**.

A difference between two figures means something only when both were measured on the same images.
The reference is, in this order (docs/deployment-records.md):

1. the benched file itself when it is the fp32 graph (or the .pt checkpoint);
2. the fp32 ``model.onnx`` beside the file, made from the same checkpoint (equal ``checkpoint_sha256``),
   run here with ONNX Runtime on the CPU on the same inputs;
3. the checkpoint's own validation figures stored in the metadata, when this bench evaluated exactly
   the set-up they were measured on (same data, format, seed, direction and number of images);
4. else none: no delta is given, and ``reference_why_none`` says why.

Every accuracy record carries a ``data_fingerprint`` (source, format, split, images, seed, input size,
and the sha256 of the model inputs), so figures of two bench records are set against each other only
when they saw the same inputs (``provenance.same_data``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..card import ModelCard
from .evaluate import evaluate, input_batch, open_samples
from .progress import progress_bar


def accuracy(runner, task, data, data_format, n, seed, hw, batch, show, direction="AtoB") -> dict:
    """The task's metrics of ``runner`` on the first ``n`` validation images of ``data`` (bench/evaluate.py)."""
    samples = open_samples(data, "val", hw, n, seed, data_format, task, direction)
    bar = progress_bar(len(samples), "accuracy", show)
    metrics = evaluate(lambda x: runner.infer(x)[0], task, samples, batch, progress=bar)
    bar.close()
    return {"images": len(samples), "data": data, "metrics": metrics}


def _data_name(data: str) -> str:
    """A path as an absolute one (the same folder named two ways is one source); ``synthetic`` as it is."""
    p = Path(str(data)).expanduser()
    return str(p.resolve()) if p.exists() else str(data)


def data_fingerprint(ev: dict, images: int, inputs_sha256: str) -> dict:
    """What the accuracy pass saw: the set-up, and the sha256 of the (N, 3, H, W) float32 model inputs."""
    return {"data": _data_name(ev["data"]), "data_format": ev["data_format"], "split": "val", "images": int(images),
            "seed": ev["seed"], "input": list(ev["hw"]), "direction": ev["direction"], "inputs_sha256": inputs_sha256}


def evaluate_with_reference(infer, ref_infer, task, samples, batch: int, progress=None) -> tuple[dict, dict | None, str]:
    """Metrics of ``infer`` and (when given) ``ref_infer`` on the same batches of ``samples``, and the sha256 of
    the inputs; batch by batch, so a large validation set is never held in memory at once."""
    from .evaluate import target_batch

    acc, ref_acc, h = task.metrics(), (task.metrics() if ref_infer is not None else None), hashlib.sha256()
    for i in range(0, len(samples), batch):
        part = samples[i : i + batch]
        x, y = input_batch(task, part), target_batch(task, part)
        h.update(x.tobytes())
        acc.update(infer(x), y)
        if ref_acc is not None:
            ref_acc.update(ref_infer(x), y)
        if progress is not None:
            progress.update(len(part))
    plain = lambda a: {k: v for k, v in a.compute().items() if not isinstance(v, list)}  # noqa: E731
    return plain(acc), (plain(ref_acc) if ref_acc is not None else None), h.hexdigest()


def _same_setup_as_checkpoint(ref_eval: dict, fp: dict) -> bool:
    """Did this pass evaluate the images the checkpoint's figures were measured on?"""
    if not ref_eval:
        return False
    return (_data_name(ref_eval.get("data", "synthetic")) == fp["data"] and ref_eval.get("data_format", "auto") == fp["data_format"]
            and int(ref_eval.get("seed", 0)) == fp["seed"] and ref_eval.get("direction", "AtoB") == fp["direction"]
            and int(ref_eval.get("n", -1)) == fp["images"])


def _sibling_fp32(model_path: Path, card: ModelCard) -> Path | None:
    """The fp32 ``model.onnx`` beside ``model_path`` made from the same checkpoint, or None."""
    fp32 = model_path.parent / "model.onnx"
    made_from = card.source.get("checkpoint_sha256")
    if not made_from or not fp32.exists() or fp32.resolve() == model_path.resolve():
        return None
    from .provenance import file_provenance

    prov = file_provenance(fp32, _onnx_card(fp32))
    return fp32 if prov.get("checkpoint_sha256") == made_from else None


def _onnx_card(path: Path) -> ModelCard:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.log_severity_level = 3
    try:
        props = dict(ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map)
        return ModelCard.from_props(props, str(path))
    except Exception:  # an unreadable sibling is simply not used as the reference
        return ModelCard()


def accuracy_vs_reference(runner, card: ModelCard, ev: dict, show_progress: bool) -> dict:
    """The task's metrics of ``runner`` on the model's evaluation set-up ``ev``, with the fp32 reference on the
    same images (or none, and why: this module's docstring) and the difference."""
    from .runners import create_runner

    task = ev["task"]
    samples = open_samples(ev["data"], "val", ev["hw"], ev["val_size"] or ev["n"], ev["seed"], ev["data_format"], task, ev["direction"],
                           depth_scale=ev.get("depth_scale", 0.0))
    path, precision, kind = Path(ev.get("model", "")), ev.get("precision", "fp32"), ev.get("kind", "onnx")
    itself = precision == "fp32" and kind in ("onnx", "torch")
    fp32 = None if itself or not path.name else _sibling_fp32(path, card)
    ref_runner = create_runner("ort-cpu", fp32, threads=getattr(runner, "threads", 1)).open() if fp32 is not None else None
    bar = progress_bar(len(samples), "accuracy", show_progress)
    try:
        metrics, ref, sha = evaluate_with_reference(lambda b: runner.infer(b)[0], ref_runner and (lambda b: ref_runner.infer(b)[0]),
                                                    task, samples, runner.accuracy_batch, bar)
    finally:
        bar.close()
        if ref_runner is not None:
            ref_runner.close()
    fp = data_fingerprint(ev, len(samples), sha)
    ref_eval, stored = card.reference_eval, card.plain_reference_metrics
    why = None
    if itself:
        ref, source = dict(metrics), f"this file ({path.name}, the fp32 graph) on the same {fp['images']} images"
    elif ref is not None:
        source = f"{fp32.name} beside it (same checkpoint) on the same {fp['images']} images, ONNX Runtime CPU"
    elif stored and _same_setup_as_checkpoint(ref_eval, fp):
        ref, source = stored, f"the checkpoint's validation on the same {fp['images']} images ({ref_eval.get('data')})"
    else:
        ref, source = {}, None
        why = (f"the fp32 figures in the metadata were measured on {ref_eval.get('n', '?')} images of {ref_eval.get('data', '?')} "
               f"(seed {ref_eval.get('seed', 0)}), this bench on {fp['images']} of {ev['data']}, and no fp32 model.onnx of the same "
               "checkpoint is beside the file: bench with the run's own data and --val-size, or put that model.onnx beside it")
    acc = {"images": len(samples), "data": ev["data"], "metrics": metrics, "data_fingerprint": fp, "reference_fp32": ref,
           "reference_source": source, "primary_metric": task.primary_metric}
    if why:  # the checkpoint's figures are kept for the reader, never set against this pass
        acc.update(reference_why_none=why, checkpoint_reference={"metrics": stored, "eval": ref_eval})
    if task.primary_metric in ref and task.primary_metric in metrics:
        acc["delta_vs_reference"] = metrics[task.primary_metric] - ref[task.primary_metric]
    return acc
