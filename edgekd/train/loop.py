"""The training loop of ``edgekd distill``.

``L_total = L_task + w * L_distill + w_s * L_spectral`` (docs/method.md §2).  The
run directory receives the resolved config, ``metrics.jsonl`` (one line per
epoch), ``steps.jsonl`` (losses per step), ``spectrum.jsonl`` (singular values
of the projector per epoch), ``last.pt`` and ``best.pt``.  The parts of a run are
built in :mod:`edgekd.train.build`; one step is :func:`edgekd.train.step.train_step`.
"""

from __future__ import annotations

import math
import os
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ..config import RunConfig
from ..errors import DivergenceError
from ..fileio import append_jsonl, atomic_write_json
from . import build
from . import checkpoint as ckpt_io
from ..distill.projector import effective_rank
from .calibrate import (auto_terms, calibrate, calibration_batches, projector_decay, read_diagnostics, recalibrate, report_diagnostics,
                        strength_record, term_norms, write_diagnostics)
from .projection_choice import broadcast_choice, measure_projection_choice
from .projector_fit import MEMORISING_RULE, ProjectorFit, memorising, memorising_warning
from .data import make_train_loader, make_val_loader
from .distributed import cleanup
from .run_dir import check_run_dir, prepare_run_dir
from .step import StepParts, TeacherFeatures, mixed_precision, train_step
from .stop import Stopped, StopRequest, signal_name


@torch.no_grad()
def evaluate(model, task, loader, device, amp_dtype=None) -> dict:
    """The task's metrics of ``model`` (a student) on ``loader``."""
    was_training = model.training
    model.eval()
    acc = task.metrics()
    for x, y in loader:
        x = x.to(device, non_blocking=True)
        with mixed_precision(amp_dtype):
            out = model(x)
        acc.update(out.float().cpu().numpy(), y.numpy())
    model.train(was_training)
    return acc.compute()


LOG_EVERY_S = 60.0  # a redirected log's line while training (the bar's place)


def _silent(*args, **kwargs):
    pass


class Trainer:
    """Builds everything from a resolved config and runs (or resumes) one training run."""

    def __init__(self, cfg: RunConfig | dict, out_dir, resume: bool = False, overwrite: bool = False, progress: bool = True):
        from ..tasks import create_task

        self.cfg = cfg = RunConfig.coerce(cfg)
        self.out = Path(out_dir)
        self.device, self.dist = build.setup_device(cfg.train.device)
        self.progress = progress and self.dist.is_main
        self.log = print if self.dist.is_main and progress else _silent
        check_run_dir(self.out, resume, overwrite, self.dist.is_main)
        self._resuming, self._overwrite = resume, overwrite

        self._ck = ckpt_io.load_for_resume(self.out / "last.pt") if resume else None
        torch.manual_seed(cfg.train.seed)  # identical initial weights on every rank
        self.train_src, self.val_src = build.open_sources(cfg, self.progress)
        self.data_warnings = build.data_warnings(cfg, self.train_src, self.val_src)
        self.task_args = build.task_args_for(cfg, self.train_src)
        self.task = create_task(cfg.model.task, **self.task_args)
        # The datasets draw nothing from torch's generator: built first, so --projection auto can measure on them.
        ds = build.build_datasets(cfg, self.train_src, self.val_src, self.task, teacher_view=build.has_teacher(cfg))
        self.train_ds, self.val_ds, self.train_eval_ds = ds.train, ds.val, ds.train_eval
        self.projection_choice = None
        self.model, self.teacher = build.build_model(cfg, self.task, self.log, choose_projection=self._choose_projection)
        placement = build.place_on_device(self.model, self.teacher, self.device)
        self.amp_dtype, self.memory_format = placement.amp_dtype, placement.memory_format
        self.optimizer = build.build_optimizer(self.model, cfg, self.device)
        self.teacher_cache = build.make_teacher_cache(self.teacher, cfg.distill.cache_teacher, cfg.model.compile,
                                                      self.dist.enabled, self.train_ds)
        self.teacher_features = TeacherFeatures(self.teacher, self.device, placement.teacher_dtype, self.teacher_cache)
        self.fit_probe = self._make_fit_probe()
        sched = build.build_schedule(cfg, len(self.train_ds), self.dist, self.optimizer)
        self.sampler, self.steps_per_epoch, self.total_steps = sched.sampler, sched.steps_per_epoch, sched.total_steps
        self.warmup_steps, self.warmup_note, self.scheduler = sched.warmup_steps, sched.warmup_note, sched.scheduler
        self.model, self.ddp_model = build.wrap_distributed(self.model, self.dist, self.device)
        self.step_fn = self._make_step_fn(cfg.model.compile)

        # Where the run stands (saved in checkpoints, restored by _resume).
        self.epoch, self.epoch_step, self.step = 0, 0, 0
        self.best, self.last_metrics, self.diagnostics = None, {}, None
        # This session's bookkeeping (set again by run()).
        self._epoch_losses: list[dict] = []
        self._step_fields: dict = {}  # step -> fields steps.jsonl adds to its losses (re-measured weights)
        self._t_run, self._step0 = time.monotonic(), 0  # for the whole-run ETA
        self._last_save, self._saved_once = time.monotonic(), resume
        self.mirrors: list = []  # experiment trackers mirroring the logs (set by edgekd distill --log)
        self._stop = StopRequest(enabled=False)  # replaced while run() runs
        self._carried_losses: list[dict] = []
        self._last_line = time.monotonic()
        if resume:
            self._resume()

    def _make_step_fn(self, compile_mode: str):
        """``step(x, y, xt=None, keys=None) -> (total, losses)``: :func:`train_step`, eager or compiled."""
        parts = StepParts(self.ddp_model, self.optimizer, self.teacher_features, self.amp_dtype)
        if compile_mode == "off":
            return partial(train_step, parts)
        from .compile import compiled_step

        return compiled_step(parts, compile_mode, self.device, self.dist.enabled)

    # ----------------------------------------------------------------- checkpoints
    def _resume(self):
        ck, self._ck = self._ck, None
        if ck.get("loss_weights"):
            self.model.weight, self.model.spectral_weight = ck["loss_weights"]["distill"], ck["loss_weights"]["spectral"]
        self.model.student.load_state_dict(ck["student"])
        extra = self.model.extra_modules()
        if "spectral.V" in ck["extra"]:  # the spectral subspace buffer's shape is known only after a step
            extra["spectral"].V = ck["extra"]["spectral.V"].to(self.device)
        extra.load_state_dict(ck["extra"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.scheduler.load_state_dict(ck["scheduler"])
        self.epoch, self.epoch_step, self.step = ck["epoch"], ck["epoch_step"], ck["step"]
        self.best = ck["best"]
        self.last_metrics = ck.get("metrics") or {}  # a resumed, already finished run keeps its figures
        torch.set_rng_state(ck["rng"]["torch"])
        self.diagnostics = read_diagnostics(self.out, self.step)

    def _checkpoint(self, metrics=None) -> dict:
        return ckpt_io.make_checkpoint(
            cfg=self.cfg.to_dict(), task_args=self.task_args, student=self.model.student, extra=self.model.extra_modules(),
            optimizer=self.optimizer, scheduler=self.scheduler, epoch=self.epoch, step=self.step,
            epoch_step=self.epoch_step, best=self.best, metrics=metrics or {}, loss_weights=self.model.weights(),
            projection_choice=self.projection_choice, total_steps=self.total_steps,
        )

    def _save_last(self, metrics=None):
        if self.dist.is_main:
            ckpt_io.save(self.out / "last.pt", self._checkpoint(metrics))
        self._last_save = time.monotonic()
        self._saved_once = True

    # ----------------------------------------------------------------- the run
    def run(self) -> dict:
        tc = self.cfg.train
        if self.dist.is_main:
            from ..config import save_resolved

            prepare_run_dir(self.out, self._resuming, self._overwrite, self.step)
            save_resolved(self.cfg, self.out)
        self._carried_losses = self._losses_of_this_epoch() if self._resuming and self.epoch_step else []
        pin = self.device.type == "cuda"
        workers = min(tc.workers, os.cpu_count() or 1)  # more loader processes than cores only thrash
        val_loader = make_val_loader(self.val_ds, tc.batch_size, workers, pin)
        self._t_run, self._step0 = time.monotonic(), self.step
        self._last_save, self._saved_once = time.monotonic(), self._resuming
        self._last_line = time.monotonic()
        loader = make_train_loader(self.train_ds, self.sampler, workers, pin)
        fit_loader = make_val_loader(self.train_eval_ds, tc.batch_size, workers, pin) if self.train_eval_ds is not None else None
        with StopRequest(enabled=not self.dist.enabled) as self._stop:  # Ctrl-C / SIGTERM: save at the next step boundary
            if self.step == 0:
                self._calibrate_and_diagnose()
            while self.epoch < tc.epochs and not self._reached_max_steps():
                last_batch = self._train_epoch(loader)
                if self._stop.requested and self.epoch_step < self.steps_per_epoch and not self._reached_max_steps():
                    self._stop_at_boundary(save=True)
                self._end_epoch(last_batch, val_loader, fit_loader)
                if self._stop.requested and self.epoch < tc.epochs and not self._reached_max_steps():
                    self._stop_at_boundary(save=False)  # _end_epoch has just written last.pt
        summary = {"run_dir": str(self.out), "epochs": self.epoch, "steps": self.step, "best": {self.task.primary_metric: self.best},
                   "final": self.last_metrics, "loss_weights": self.model.weights(), "diagnostics": self.diagnostics}
        if self.dist.is_main:
            atomic_write_json(self.out / "summary.json", summary)
        for m in self.mirrors:
            m.close()
        cleanup(self.dist)
        return summary

    def _losses_of_this_epoch(self) -> list:
        """The logged losses of the steps of this epoch before the checkpoint (steps.jsonl), so that the epoch's mean
        training losses are the same whether or not the run was interrupted."""
        from ..fileio import read_jsonl

        rows = [r for r in read_jsonl(self.out / "steps.jsonl") if r.get("epoch") == self.epoch and r.get("step", 0) <= self.step]
        # steps.jsonl rows also carry the re-measured strength of their step (grad_ratio_*, weight_*): not losses.
        return [{k: v for k, v in r.items() if k not in ("step", "epoch", "lr") and not k.startswith(("grad_ratio_", "weight_"))}
                for r in rows]

    def _stop_at_boundary(self, save: bool):
        """A signal arrived: keep this step's checkpoint and stop (the CLI exits 128 + the signal's number)."""
        if save:
            self._save_last(self.last_metrics)
        signum = self._stop.signum
        raise Stopped(f"stopped by {signal_name(signum)} after step {self.step} of {self.total_steps}: {self.out / 'last.pt'} "
                      f"holds step {self.step}", signum, self.step)

    def _reached_max_steps(self) -> bool:
        max_steps = self.cfg.train.max_steps
        return bool(max_steps) and self.step >= max_steps

    def _train_epoch(self, loader):
        """Steps from ``epoch_step`` to the end of the epoch (or ``max_steps``); returns the last batch."""
        self.sampler.set_epoch(self.epoch, self.epoch_step)
        self.ddp_model.train()
        self._epoch_losses, self._carried_losses = self._carried_losses, []  # a mid-epoch resume: the steps before it count
        pending, last_batch = [], None
        check_every = 1 if self.device.type == "cpu" else 10  # each check is a host sync
        bar = self._progress_bar()
        for batch in loader:
            last_batch = self._to_device(batch)
            total, losses = self.step_fn(*last_batch)
            self.scheduler.step()
            self.step += 1
            self.epoch_step += 1
            self._maybe_recalibrate(last_batch)
            pending.append((self.step, total, losses))
            if len(pending) >= check_every:
                self._check_finite(pending)
                self._after_check(bar)
            bar.update(1)
            self._heartbeat()
            if self._reached_max_steps() or self._stop.requested:
                break
        self._check_finite(pending)
        bar.close()
        return last_batch

    def _heartbeat(self):
        """In a redirected log (no bar), a line at least every LOG_EVERY_S seconds of training: the run is alive."""
        now = time.monotonic()
        if not self.progress or sys.stderr.isatty() or now - self._last_line < LOG_EVERY_S:
            return
        self._last_line = now
        losses = "  ".join(f"{k} {v:.4g}" for k, v in (self._epoch_losses[-1] if self._epoch_losses else {}).items())
        print(f"epoch {self.epoch + 1}/{self.cfg.train.epochs} step {self.step}/{self.total_steps}: {losses} "
              f"[run ETA {self._run_eta()}]", flush=True)

    def _progress_bar(self):
        from tqdm.auto import tqdm

        # In a redirected log a bar writes every update: plain per-epoch lines there (see _print_epoch).
        return tqdm(total=self.steps_per_epoch, initial=self.epoch_step, disable=not (self.progress and sys.stderr.isatty()),
                    desc=f"epoch {self.epoch + 1}/{self.cfg.train.epochs}", unit="step", dynamic_ncols=True, leave=True)

    def _after_check(self, bar):
        """After a loss check: the bar's losses, and a checkpoint when one is due."""
        if self._epoch_losses:
            bar.set_postfix({**{k: f"{v:.4g}" for k, v in self._epoch_losses[-1].items()}, "run ETA": self._run_eta()}, refresh=False)
        # The first step is checkpointed at once: an early Ctrl-C still leaves something to resume.
        if time.monotonic() - self._last_save >= self.cfg.train.save_every_min * 60.0 or not self._saved_once:
            self._save_last()

    def _check_finite(self, pending: list):
        """Look at the losses of the steps since the last check (one host sync per check)."""
        if not pending:
            return
        stacked = torch.stack([torch.stack([t] + list(d.values())).float() for _, t, d in pending]).cpu()
        for (step, _, d), row in zip(pending, stacked):
            vals = {"total": float(row[0]), **{k: float(v) for k, v in zip(d.keys(), row[1:])}}
            if not all(math.isfinite(v) for v in vals.values()):
                bad = [k for k, v in vals.items() if k != "total" and not math.isfinite(v)] or ["total"]
                raise DivergenceError(
                    f"loss became {vals[bad[0]]} at step {step} (term: {', '.join(bad)}); the last good checkpoint "
                    f"{self.out / 'last.pt'} is kept; lower --lr or --distill-weight and --resume or restart"
                )
            if self.dist.is_main:
                self._append("steps", {"step": step, "epoch": self.epoch, "lr": float(self.scheduler.get_last_lr()[0]), **vals,
                                       **self._step_fields.pop(step, {})})
            self._epoch_losses.append(vals)
        pending.clear()

    def _append(self, log: str, record: dict) -> None:
        """One line of ``<log>.jsonl``, mirrored to the trackers of ``--log`` (train/tracking.py)."""
        append_jsonl(self.out / f"{log}.jsonl", record)
        for m in self.mirrors:
            m.write(log, record)

    def _end_epoch(self, last_batch, val_loader, fit_loader):
        """The epoch's record (mean losses, loss strength, metrics when evaluated), logs and checkpoints."""
        tc = self.cfg.train
        losses = self._epoch_losses
        train_means = {f"train_{k}": float(np.mean([d[k] for d in losses])) for k in (losses[0] if losses else {})}
        record = {"epoch": self.epoch + 1, "step": self.step, **train_means, **self._strength_record(last_batch)}
        record.update(self._fit_record(record["epoch"]))
        stop = self._reached_max_steps()
        if self.epoch_step >= self.steps_per_epoch:  # finished (a run stopped by max_steps stays mid-epoch)
            self.epoch, self.epoch_step = self.epoch + 1, 0
        every = tc.eval_every
        improved = False
        if stop or self.epoch >= tc.epochs or (every and record["epoch"] % every == 0):
            self.last_metrics = self._evaluate(val_loader, fit_loader)
            record.update(self.last_metrics)
            primary = self.last_metrics[self.task.primary_metric]
            improved = self.best is None or (primary > self.best if self.task.higher_is_better else primary < self.best)
            if improved:
                self.best = primary
        if self.dist.is_main:
            self._write_epoch(record, improved)

    def _write_epoch(self, record: dict, improved: bool):
        """metrics.jsonl, spectrum.jsonl, last.pt (and best.pt), the epoch's line (main process)."""
        self._append("metrics", record)
        if self.model.distiller is not None:
            d = self.model.distiller
            sv, dsv = d.singular_values(), d.delta_singular_values()
            append_jsonl(self.out / "spectrum.jsonl", {"epoch": record["epoch"], "step": self.step,
                                                       "effective_rank": effective_rank(sv), "delta_effective_rank": effective_rank(dsv),
                                                       "singular_values": sv.tolist(), "delta_singular_values": dsv.tolist()})
        if self.diagnostics is not None:
            write_diagnostics(self.diagnostics, self.out)
        self._save_last(self.last_metrics)
        if improved:
            ckpt_io.save(self.out / "best.pt", self._checkpoint(self.last_metrics))
        self._print_epoch(record)

    # ----------------------------------------------------------------- loss strength (train/calibrate.py)
    def _aux_terms(self) -> bool:
        return self.model.distiller is not None or self.model.spectral is not None

    def _term_norms(self, batches) -> dict:
        return term_norms(self.model, batches, self.teacher_features, self.amp_dtype, self.dist, self.device)

    def _calibrate_and_diagnose(self):
        """Once, before the first step: gradient ratios at the configured weights, ``auto`` weights set
        from them, the rows-per-batch vs teacher-channels check; warnings in one line each."""
        if not self._aux_terms():
            return
        batches = calibration_batches(self.train_ds, self.cfg, self.dist.world, self._to_device)
        self.diagnostics = calibrate(self.model, batches, self._term_norms(batches), self.cfg.distill, self.teacher)
        self.diagnostics["projector_decay"] = projector_decay(self.optimizer, self.cfg.distill)
        if self.projection_choice is not None:
            self.diagnostics["projection_choice"] = self.projection_choice
        if self.fit_probe is not None:
            fit = self.fit_probe.measure(self.model)
            self.diagnostics["projector_fit_rule"] = MEMORISING_RULE
            self.diagnostics["projector_fit"] = [{"epoch": 0, "step": 0, **fit, "memorising": memorising(fit)}]
        report_diagnostics(self.diagnostics, self.out, self.dist.is_main, self.log)

    def _maybe_recalibrate(self, batch):
        """``auto`` weights re-measured on the batch just trained on, every ``distill.recalibrate_every`` steps."""
        dc = self.cfg.distill
        every = dc.recalibrate_every
        if not every or self.step % every or not auto_terms(dc) or not self._aux_terms():
            return
        self._step_fields[self.step] = recalibrate(self.model, self._term_norms([batch]), dc)

    # ----------------------------------------------------------------- the projector: choice and fit
    def _choose_projection(self, student, teacher) -> str:
        """``--projection auto``: measured on the calibration batches before the projector exists (or the choice
        the checkpoint kept, on resume); the decision is rank 0's on every rank."""
        from ..distill.projection_choice import describe

        if self._ck is not None and self._ck.get("projection_choice"):
            self.projection_choice = self._ck["projection_choice"]
            return self.projection_choice["chosen"]
        placement = build.place_on_device(student, teacher, self.device)
        self.memory_format = placement.memory_format
        batches = calibration_batches(self.train_ds, self.cfg, self.dist.world, self._to_device)
        features = TeacherFeatures(teacher, self.device, placement.teacher_dtype)
        self.projection_choice = measure_projection_choice(student, features, batches, self.cfg.distill, placement.amp_dtype,
                                                           self.device)
        self.projection_choice["chosen"] = broadcast_choice(self.projection_choice["chosen"], self.dist, self.device)
        self.projection_choice["summary"] = describe(self.projection_choice)
        self.log(self.projection_choice["summary"])
        return self.projection_choice["chosen"]

    def _make_fit_probe(self):
        n = self.cfg.distill.fit_images
        if self.model.distiller is None or not n:
            return None
        from .data import TaskDataset

        size = self.cfg.data.image_size
        return ProjectorFit(TaskDataset(self.train_src, self.task, size), self.val_ds, n, self.teacher_features, self.device,
                            self.memory_format, self.amp_dtype)

    def _fit_record(self, epoch: int) -> dict:
        """The projector's R^2 on training and validation images at this epoch's end; warns once when it memorises."""
        if self.fit_probe is None or self.diagnostics is None:
            return {}
        fit = self.fit_probe.measure(self.model)
        history = self.diagnostics.setdefault("projector_fit", [])
        if memorising(fit) and not any(f.get("memorising") for f in history) and self.dist.is_main:
            print(memorising_warning(fit, epoch), file=sys.stderr, flush=True)
        history.append({"epoch": epoch, "step": self.step, **fit, "memorising": memorising(fit)})
        return {f"fit_{k}": v for k, v in fit.items()}

    def _strength_record(self, batch) -> dict:
        """Weights and weighted gradient ratios on the epoch's last batch (logged each epoch)."""
        if batch is None or not self._aux_terms():
            return {}
        x, y, xt, keys = batch  # a few samples suffice for a ratio of norms (every loss is a batch mean)
        return strength_record(self.model, self._term_norms([(x[:4], y[:4], xt[:4], None if keys is None else keys[:4])]))

    # ----------------------------------------------------------------- helpers
    def _to_device(self, batch) -> tuple:
        """(x, y[, x_teacher, keys]) on the training device; the teacher's view defaults to ``x``."""
        x, y = batch[0], batch[1]
        x = x.to(self.device, non_blocking=True, memory_format=self.memory_format)
        y = y.to(self.device, non_blocking=True)
        if len(batch) == 2:
            return x, y, x, None
        xt = batch[2].to(self.device, non_blocking=True, memory_format=self.memory_format)
        return x, y, xt, batch[3]

    def _evaluate(self, val_loader, fit_loader) -> dict:
        """Validation metrics, plus ``train_<metric>`` on the fixed training subset (the overfitting gap)."""
        scalar = lambda m: {k: v for k, v in m.items() if not isinstance(v, list)}  # noqa: E731
        metrics = scalar(evaluate(self.model.student, self.task, val_loader, self.device, self.amp_dtype))
        if fit_loader is not None:
            fit = scalar(evaluate(self.model.student, self.task, fit_loader, self.device, self.amp_dtype))
            metrics.update({f"train_{k}": v for k, v in fit.items()})
        return metrics

    def _run_eta(self) -> str:
        """Time left for the whole run, from this session's pace so far (evaluation included)."""
        done = self.step - self._step0
        if done <= 0:
            return "?"
        left = (time.monotonic() - self._t_run) / done * max(0, self.total_steps - self.step)
        return f"{left / 3600:.1f} h" if left >= 3600 else f"{left / 60:.0f} min" if left >= 120 else f"{left:.0f} s"

    def _print_epoch(self, record: dict):
        if not self.progress:
            return
        shown = {k: v for k, v in record.items() if k not in ("epoch", "step")}
        text = "  ".join(f"{k} {v:.4f}" for k, v in shown.items())
        eta = f" [run ETA {self._run_eta()}]" if self.step < self.total_steps else ""
        print(f"epoch {record['epoch']}/{self.cfg.train.epochs} (step {record['step']}/{self.total_steps}){eta}: {text}", flush=True)
