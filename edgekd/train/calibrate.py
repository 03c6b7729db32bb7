"""Before the first step: gradient ratios of the loss terms, ``auto`` weights set from them, and
diagnostics (issue 10; the measurement itself is :mod:`edgekd.train.strength`)."""

from __future__ import annotations

import sys

import torch

from ..fileio import atomic_write_json
from .data import EpochSampler
from .step import mixed_precision
from .strength import auto_weight, mean_norms, ratios


def term_norms(model, batches, teacher, amp_dtype, dist, device) -> dict:
    """Mean gradient norm of each term on ``Z_s`` over device batches (x, y, xt, keys), averaged over
    processes, without side effects on BatchNorm statistics (the measurement must not change the run it measures).
    ``teacher`` is the run's :class:`~edgekd.train.step.TeacherFeatures`."""
    student = model.student
    saved = {k: v.clone() for k, v in student.state_dict().items() if "running" in k or "num_batches" in k}
    reduce = None
    if dist.enabled:
        import torch.distributed as tdist

        def reduce(v):
            v = v.to(device)
            tdist.all_reduce(v)
            return (v / dist.world).cpu()
    try:
        with mixed_precision(amp_dtype):
            return mean_norms([(x, y, teacher.features(xt, keys)) for x, y, xt, keys in batches], model, reduce)
    finally:
        student.load_state_dict(saved, strict=False)


def calibration_batches(train_ds, cfg: dict, world: int, to_device) -> list:
    """Up to 4 global batches of epoch 0, the same on every rank: the weights then equal a single process's
    with that batch."""
    from torch.utils.data import default_collate

    bs = cfg["train"]["batch_size"] * world
    glob = EpochSampler(len(train_ds), bs, cfg["train"]["seed"])
    glob.set_epoch(0, 0)
    idx = list(glob)
    k = max(1, min(4, len(idx) // bs))
    return [to_device(default_collate([train_ds[t] for t in idx[j * bs:(j + 1) * bs]])) for j in range(k)]


def calibrate(model, batches: list, norms: dict, dc: dict, teacher) -> dict:
    """Set ``auto`` weights of ``model`` from the term norms; return the diagnostics (ratios at weight 1 and at
    the weights used, rows per batch against teacher channels)."""
    at_one = ratios(norms, {"distill": 1.0, "spectral": 1.0})
    for term, key in (("distill", "weight"), ("spectral", "spectral_weight")):
        if term in norms and dc[key] == "auto":
            setattr(model, "weight" if term == "distill" else "spectral_weight", auto_weight(norms, term, dc["grad_ratio"]))
    x = batches[0][0]
    with torch.no_grad():
        zs_shape = model.student(x[:1], return_features=True)[1].shape
    rows = x.shape[0] * zs_shape[-2] * zs_shape[-1]
    return {"batches": len(batches), "grad_norms": norms, "ratio_at_weight_1": at_one, "weights": model.weights(),
            "ratio": ratios(norms, model.weights()), "rows_per_batch": rows,
            "teacher_channels": teacher.channels if teacher is not None else None,
            "student_channels": zs_shape[1], "grad_ratio_target": dc["grad_ratio"]}


def report_diagnostics(d: dict, out, is_main: bool, log) -> None:
    """diagnostics.json (main process), one summary line to ``log``, warnings on stderr."""
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "diagnostics.json", d)
    parts = [f"{t} {d['ratio'][t]:.3g} (w={d['weights'][t]:.4g})" for t in d["ratio"]]
    log(f"step-0 gradient on Z_s relative to the task's: {', '.join(parts)}; rows per batch {d['rows_per_batch']}"
        + (f" vs {d['teacher_channels']} teacher channels" if d["teacher_channels"] else ""))
    warn = []
    for t, r in d["ratio"].items():
        if r < 0.01:
            warn.append(f"warning: the {t} term's gradient is {100 * r:.2g}% of the task's: it barely acts; "
                        f"use --{'distill' if t == 'distill' else 'spectral'}-weight auto")
    if d["teacher_channels"] and d["rows_per_batch"] < d["teacher_channels"]:
        warn.append(f"warning: {d['rows_per_batch']} feature rows per batch < {d['teacher_channels']} teacher channels: "
                    f"the projector can fit any batch; use a larger --image-size or --batch-size")
    if is_main:
        for w in warn:
            print(w, file=sys.stderr, flush=True)


def strength_record(model, norms: dict) -> dict:
    """The epoch's log fields: weights and weighted gradient ratios (``norms`` on the epoch's last batch)."""
    w = model.weights()
    out = {f"weight_{t}": w[t] for t in ratios(norms, w)}
    out.update({f"grad_ratio_{t}": r for t, r in ratios(norms, w).items()})
    return out
