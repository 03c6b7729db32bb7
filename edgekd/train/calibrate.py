"""Before the first step: gradient ratios of the loss terms, ``auto`` weights set from them, and
diagnostics (issue 10; the measurement itself is :mod:`edgekd.train.strength`)."""

from __future__ import annotations

import sys

import torch

from ..config import DistillConfig, RunConfig, section_from_dict
from ..fileio import atomic_write_json
from .data import EpochSampler
from .probe import unchanged
from .step import mixed_precision
from .strength import auto_weight, mean_norms, ratios


def term_norms(model, batches, teacher, amp_dtype, dist, device) -> dict:
    """Mean gradient norm of each term on ``Z_s`` over device batches (x, y, xt, keys), averaged over
    processes, without side effects: BatchNorm statistics, the spectral subspace and the random generators
    are put back (the measurement must not change the run it measures, :mod:`edgekd.train.probe`).
    ``teacher`` is the run's :class:`~edgekd.train.step.TeacherFeatures`."""
    reduce = None
    if dist.enabled:
        import torch.distributed as tdist

        def reduce(v):
            v = v.to(device)
            tdist.all_reduce(v)
            return (v / dist.world).cpu()
    with unchanged(model, device=device), mixed_precision(amp_dtype):
        return mean_norms([(x, y, teacher.features(xt, keys)) for x, y, xt, keys in batches], model, reduce)


def calibration_batches(train_ds, cfg: RunConfig | dict, world: int, to_device) -> list:
    """Up to 4 global batches of epoch 0, the same on every rank: the weights then equal a single process's
    with that batch."""
    from torch.utils.data import default_collate

    tc = RunConfig.coerce(cfg).train
    bs = tc.batch_size * world
    glob = EpochSampler(len(train_ds), bs, tc.seed)
    glob.set_epoch(0, 0)
    idx = list(glob)
    k = max(1, min(4, len(idx) // bs))
    return [to_device(default_collate([train_ds[t] for t in idx[j * bs:(j + 1) * bs]])) for j in range(k)]


def set_auto_weights(model, norms: dict, dc: DistillConfig) -> None:
    """Set each ``auto`` term's weight so that its gradient on ``Z_s`` is ``grad_ratio`` times the task's
    (a numeric weight is left as given)."""
    for term, key in (("distill", "weight"), ("spectral", "spectral_weight")):
        if term in norms and getattr(dc, key) == "auto":
            setattr(model, key, auto_weight(norms, term, dc.grad_ratio))


def calibrate(model, batches: list, norms: dict, dc: DistillConfig | dict, teacher) -> dict:
    """Set ``auto`` weights of ``model`` from the term norms; return the diagnostics (ratios at weight 1 and at
    the weights used, rows per batch against teacher channels)."""
    dc = section_from_dict("distill", dc)
    at_one = ratios(norms, {"distill": 1.0, "spectral": 1.0})
    set_auto_weights(model, norms, dc)
    x = batches[0][0]
    with torch.no_grad(), unchanged(model.student, device=x.device):  # a train-mode forward moves BatchNorm's statistics
        zs_shape = model.student(x[:1], return_features=True)[1].shape
    rows = x.shape[0] * zs_shape[-2] * zs_shape[-1]
    return {"batches": len(batches), "grad_norms": norms, "ratio_at_weight_1": at_one, "weights": model.weights(),
            "ratio": ratios(norms, model.weights()), "rows_per_batch": rows,
            "teacher_channels": teacher.channels if teacher is not None else None,
            "student_channels": zs_shape[1], "grad_ratio_target": dc.grad_ratio,
            "recalibrate_every": dc.recalibrate_every if auto_terms(dc) else 0}


def auto_terms(dc: DistillConfig) -> bool:
    """Whether any weight is ``auto`` (only those are re-measured during training)."""
    return dc.weight == "auto" or dc.spectral_weight == "auto"


def recalibrate(model, norms: dict, dc: DistillConfig | dict) -> dict:
    """Re-measure during training (every ``distill.recalibrate_every`` steps): the ratios the run had at its
    weights, then new ``auto`` weights; returns the steps.jsonl fields (``grad_ratio_*`` before, ``weight_*`` after)."""
    before = ratios(norms, model.weights())
    set_auto_weights(model, norms, section_from_dict("distill", dc))
    w = model.weights()
    return {**{f"grad_ratio_{t}": r for t, r in before.items()}, **{f"weight_{t}": w[t] for t in before}}


def projector_decay(optimizer, dc: DistillConfig) -> dict | None:
    """The projector's decay as a stated quantity: its lr, weight decay and the shrinkage
    ``prod_t (1 - lr_t * wd)`` that decay alone applies to a weight over the run (build.apply_projector_shrinkage)."""
    group = next((g for g in optimizer.param_groups if g.get("name") == "projector"), None)
    if group is None:
        return None
    return {"lr": float(group.get("initial_lr", group["lr"])), "weight_decay": float(group["weight_decay"]), "shrinkage": group.get("shrinkage"),
            "requested_shrinkage": dc.projector_shrinkage or None}


def write_diagnostics(d: dict, out) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "diagnostics.json", d)


def read_diagnostics(out, step: int) -> dict | None:
    """A resumed run's diagnostics, without the epochs past its checkpoint's ``step`` (they will be measured again)."""
    import json

    try:
        d = json.loads((out / "diagnostics.json").read_text())
    except (OSError, ValueError):
        return None
    if "projector_fit" in d:
        d["projector_fit"] = [f for f in d["projector_fit"] if f.get("step", 0) <= step]
    return d


def report_diagnostics(d: dict, out, is_main: bool, log) -> None:
    """diagnostics.json (main process), one summary line to ``log``, warnings on stderr."""
    if is_main:
        write_diagnostics(d, out)
    parts = [f"{t} {d['ratio'][t]:.3g} (w={d['weights'][t]:.4g})" for t in d["ratio"]]
    log(f"step-0 gradient on Z_s relative to the task's: {', '.join(parts)}; rows per batch {d['rows_per_batch']}"
        + (f" vs {d['teacher_channels']} teacher channels" if d["teacher_channels"] else ""))
    decay = d.get("projector_decay")
    if decay:
        log(f"projector: lr {decay['lr']:.3g}, weight decay {decay['weight_decay']:.4g}: decay alone leaves "
            f"{decay['shrinkage']:.4g} of a weight by the end of the run")
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
