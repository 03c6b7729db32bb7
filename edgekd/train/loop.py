"""The training loop of ``edgekd distill``.

``L_total = L_task + w * L_distill + w_s * L_spectral`` (DESIGN.md §1).  The
run directory receives the resolved config, ``metrics.jsonl`` (one line per
epoch), ``steps.jsonl`` (losses per step), ``spectrum.jsonl`` (singular values
of the projector per epoch), ``last.pt`` and ``best.pt``.
"""

from __future__ import annotations

import math
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from ..errors import DivergenceError, EdgekdError
from ..fileio import append_jsonl, atomic_write_json
from . import checkpoint as ckpt_io
from .data import EpochSampler, TaskDataset, make_train_loader, make_val_loader
from .distributed import DistInfo, cleanup, init_distributed
from .model import DistillModel


class PendingFeatures:
    """Teacher features being computed on another CUDA stream; ``get()`` makes the caller's stream wait."""

    def __init__(self, tensor, stream):
        self.tensor, self.stream = tensor, stream

    def get(self):
        cur = torch.cuda.current_stream(self.tensor.device)
        cur.wait_stream(self.stream)
        if not torch.cuda.is_current_stream_capturing():
            self.tensor.record_stream(cur)  # the caching allocator must not reuse it while the main stream reads it
        return self.tensor


def pick_device(name: str) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise EdgekdError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu or auto")
        return torch.device("cuda")
    return torch.device("cpu")


def task_args_for(cfg: dict, train_source) -> dict:
    """Arguments that rebuild the task later (class count and names, depth range, eval crop)."""
    name = cfg["model"]["task"]
    args = {"max_depth": cfg["data"]["max_depth"]}
    if name == "segmentation":
        args.update(num_classes=len(train_source.classes), class_names=list(train_source.classes))
    elif name == "classification":
        names = list(getattr(train_source, "object_classes", None) or train_source.classes)
        args.update(num_classes=len(names), class_names=names)
    frac = getattr(train_source, "eval_crop_fraction", None)
    if name == "depth" and frac is not None:  # e.g. the Eigen crop of NYUv2, at the training resolution
        h, w = cfg["data"]["image_size"]
        args["eval_crop"] = [round(frac[0] * h), round(frac[1] * h), round(frac[2] * w), round(frac[3] * w)]
    return args


def lr_lambda(warmup: int, total: int):
    """Linear warm-up, then cosine decay to 1% (as a function of the optimiser step)."""

    def f(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        p = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * p))

    return f


@torch.no_grad()
def evaluate(model, task, loader, device, amp_dtype=None) -> dict:
    """The task's metrics of ``model`` (a student) on ``loader``."""
    was_training = model.training
    model.eval()
    acc = task.metrics()
    autocast = torch.autocast("cuda", dtype=amp_dtype) if amp_dtype else nullcontext()
    for x, y in loader:
        x = x.to(device, non_blocking=True)
        with autocast:
            out = model(x)
        acc.update(out.float().cpu().numpy(), y.numpy())
    model.train(was_training)
    return acc.compute()


class Trainer:
    """Builds everything from a resolved config and runs (or resumes) one training run."""

    def __init__(self, cfg: dict, out_dir, resume: bool = False, overwrite: bool = False, progress: bool = True):
        from ..data import open_dataset
        from ..distill import Distiller, SpectralRegulariser
        from ..models import create_student, create_teacher
        from ..tasks import create_task

        self.cfg, self.out = cfg, Path(out_dir)
        tc, dc = cfg["train"], cfg["distill"]
        self.device = pick_device(tc["device"])
        self.dist: DistInfo = init_distributed(self.device.type)
        if self.device.type == "cuda" and self.dist.enabled:
            self.device = torch.device("cuda", self.dist.local_rank)
        self.progress = progress and self.dist.is_main
        self._check_run_dir(resume, overwrite)

        torch.manual_seed(tc["seed"])  # identical initial weights on every rank
        size = cfg["data"]["image_size"]
        data, fmt = cfg["data"]["data"], cfg["data"]["data_format"]
        # The data's seed is its own: seeds of a comparison vary the initialisation and order, not the scenes.
        dseed = cfg["data"]["seed"]
        kw = {"task": cfg["model"]["task"], "direction": cfg["data"]["direction"]}
        self.train_src = open_dataset(data, "train", size, tc["train_size"], dseed, fmt, **kw)
        self.val_src = open_dataset(data, "val", size, tc["val_size"], dseed, fmt, **kw)
        for name, src in (("training", self.train_src), ("validation", self.val_src)):
            if len(src) == 0:
                raise EdgekdError(f"the {name} split of {data} is empty; check the data path or --train-size/--val-size")
            if hasattr(src, "prerender"):  # finite synthetic sets: render once, shared by loader workers
                t0, procs = time.monotonic(), max(tc["workers"], os.cpu_count() or 1)
                if self.progress:  # minutes for a full set on a CPU: never silently
                    print(f"rendering {len(src)} {name} scenes at {size[0]}x{size[1]} ({procs} processes)...", flush=True)
                src.prerender(procs)
                if self.progress and time.monotonic() - t0 > 2:
                    print(f"  rendered in {time.monotonic() - t0:.0f} s", flush=True)
        self.task_args = task_args_for(cfg, self.train_src)
        self.task = create_task(cfg["model"]["task"], **self.task_args)

        student = create_student(cfg, self.task)
        self.teacher = create_teacher(dc["teacher"], dc["teacher_arch"], dc["teacher_weights"] or None)
        distiller = None
        if self.teacher is not None:
            distiller = Distiller(dc["method"], dc["projection"], student.feature_channels, self.teacher.channels)
        if dc["spectral"] >= student.feature_channels:
            raise EdgekdError(f"--spectral {dc['spectral']} keeps all {student.feature_channels} channels of {cfg['model']['student']}: "
                              f"nothing is suppressed; use a rank below {student.feature_channels} (the paper uses 2 to 8)")
        spectral = SpectralRegulariser(dc["spectral"], dc["spectral_iters"], reduction="elements") if dc["spectral"] > 0 else None
        self.model = DistillModel(student, self.task, distiller, spectral, dc["weight"], dc["spectral_weight"])

        cuda = self.device.type == "cuda"
        self.amp_dtype = torch.bfloat16 if cuda else None
        mem = torch.channels_last if cuda else torch.contiguous_format
        self.model.to(self.device, memory_format=mem)
        # The teacher only runs forward: bf16 weights on GPU halve its cost (DESIGN.md §1).
        self._teacher_dtype = torch.bfloat16 if cuda else torch.float32
        if self.teacher is not None:
            self.teacher.to(self.device, dtype=self._teacher_dtype, memory_format=mem)
        self.memory_format = mem

        params = [p for p in self.model.parameters() if p.requires_grad]
        kw = {"fused": True} if cuda else {}
        self.optimizer = torch.optim.AdamW(params, lr=tc["lr"], weight_decay=tc["weight_decay"], **kw)

        bs = tc["batch_size"]
        self.train_ds = TaskDataset(self.train_src, self.task, size, augment_data=tc["augment"], seed=tc["seed"])
        self.val_ds = TaskDataset(self.val_src, self.task, size)
        self.sampler = EpochSampler(len(self.train_ds), bs, tc["seed"], self.dist.rank, self.dist.world)
        self.steps_per_epoch = self.sampler.steps_per_epoch()
        self.total_steps = tc["epochs"] * self.steps_per_epoch
        if tc["max_steps"]:
            self.total_steps = min(self.total_steps, tc["max_steps"])
        from ..config import effective_warmup

        self.warmup_steps, self.warmup_note = effective_warmup(tc, self.total_steps)  # scaled to short runs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_lambda(self.warmup_steps, self.total_steps))

        self.ddp_model = self.model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if cuda else None
            if cuda:  # per-GPU batches are small for dense tasks: normalise over the global batch
                self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            self.ddp_model = DDP(self.model, device_ids=ids)
        self.step_fn = self._eager_step
        if cfg["model"]["compile"] != "off":
            from .compile import compiled_step

            self.step_fn = compiled_step(self, cfg["model"]["compile"])

        self._teacher_stream = None
        self.epoch, self.epoch_step, self.step = 0, 0, 0
        self.best = None
        if resume:
            self._resume()

    # ----------------------------------------------------------------- set-up helpers
    def _check_run_dir(self, resume: bool, overwrite: bool):
        last = self.out / "last.pt"
        if resume and not last.exists():
            raise EdgekdError(f"--resume: {last} does not exist; start the run without --resume")
        if not resume and not overwrite and last.exists():
            raise EdgekdError(f"{self.out} already holds a run; add --resume to continue it, --overwrite to replace it, or choose --out")
        if self.dist.is_main:
            try:
                self.out.mkdir(parents=True, exist_ok=True)
                probe = self.out / ".write-test"
                probe.write_text("")
                probe.unlink()
            except OSError as e:
                raise EdgekdError(f"output directory {self.out} is not writable ({e.strerror}); choose another --out") from None
            if overwrite and not resume:
                for name in ("metrics.jsonl", "steps.jsonl", "spectrum.jsonl"):
                    (self.out / name).unlink(missing_ok=True)

    def _resume(self):
        ck = ckpt_io.load_for_resume(self.out / "last.pt")
        self.model.student.load_state_dict(ck["student"])
        extra = self.model.extra_modules()
        if "spectral.V" in ck["extra"]:  # the spectral subspace buffer's shape is known only after a step
            extra["spectral"].V = ck["extra"]["spectral.V"].to(self.device)
        extra.load_state_dict(ck["extra"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.scheduler.load_state_dict(ck["scheduler"])
        self.epoch, self.epoch_step, self.step = ck["epoch"], ck["epoch_step"], ck["step"]
        self.best = ck["best"]
        self._last_metrics = ck.get("metrics") or {}
        torch.set_rng_state(ck["rng"]["torch"])

    # ----------------------------------------------------------------- checkpoints and logs
    def _checkpoint(self, metrics=None) -> dict:
        return ckpt_io.make_checkpoint(
            cfg=self.cfg, task_args=self.task_args, student=self.model.student, extra=self.model.extra_modules(),
            optimizer=self.optimizer, scheduler=self.scheduler, epoch=self.epoch, step=self.step,
            epoch_step=self.epoch_step, best=self.best, metrics=metrics or {},
        )

    def _save_last(self, metrics=None):
        if self.dist.is_main:
            ckpt_io.save(self.out / "last.pt", self._checkpoint(metrics))
        self._last_save = time.monotonic()

    # ----------------------------------------------------------------- one step
    def _teacher_features(self, x):
        if self.teacher is None:
            return None
        # The teacher's weights already have the compute dtype (bf16 on GPU): no autocast needed.
        with torch.no_grad():
            return self.teacher(x.to(self._teacher_dtype))

    def _teacher_async(self, x):
        """On CUDA the frozen teacher runs on a side stream, overlapping the student's forward pass;
        the student waits for it only where the distillation term needs ``Z_t``."""
        if self.teacher is None or self.device.type != "cuda":
            return self._teacher_features(x)
        if self._teacher_stream is None:
            self._teacher_stream = torch.cuda.Stream(self.device)
        side = self._teacher_stream
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            zt = self._teacher_features(x)
        return PendingFeatures(zt, side)

    def _eager_step(self, x, y):
        zt = self._teacher_async(x)
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=self.amp_dtype) if self.amp_dtype else nullcontext():
            total, losses = self.ddp_model(x, y, zt)
        total.backward()
        self.optimizer.step()
        return total.detach(), {k: v.detach() for k, v in losses.items()}

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
                append_jsonl(self.out / "steps.jsonl", {"step": step, "epoch": self.epoch, "lr": float(self.scheduler.get_last_lr()[0]), **vals})
            self._epoch_losses.append(vals)
        pending.clear()

    # ----------------------------------------------------------------- the run
    def run(self) -> dict:
        from tqdm.auto import tqdm

        tc = self.cfg["train"]
        if self.dist.is_main:
            from ..config import save_resolved

            save_resolved(self.cfg, self.out)
        pin = self.device.type == "cuda"
        workers = min(tc["workers"], os.cpu_count() or 1)  # more loader processes than cores only thrash
        val_loader = make_val_loader(self.val_ds, tc["batch_size"], workers, pin)
        check_every = 1 if self.device.type == "cpu" else 10
        self._t_run, self._step0 = time.monotonic(), self.step  # for the whole-run ETA
        self._last_save = time.monotonic()
        save_every = tc["save_every_min"] * 60.0
        metrics = getattr(self, "_last_metrics", {})  # a resumed, already finished run keeps its figures
        stop = bool(tc["max_steps"]) and self.step >= tc["max_steps"]
        loader = make_train_loader(self.train_ds, self.sampler, workers, pin)
        while self.epoch < tc["epochs"] and not stop:
            self.sampler.set_epoch(self.epoch, self.epoch_step)
            self.ddp_model.train()
            self._epoch_losses = []
            pending = []
            # In a redirected log a bar writes every update: plain per-epoch lines there (see _print_epoch).
            bar = tqdm(total=self.steps_per_epoch, initial=self.epoch_step, disable=not (self.progress and sys.stderr.isatty()),
                       desc=f"epoch {self.epoch + 1}/{tc['epochs']}", unit="step", dynamic_ncols=True, leave=True)
            for x, y in loader:
                x = x.to(self.device, non_blocking=True, memory_format=self.memory_format)
                y = y.to(self.device, non_blocking=True)
                total, losses = self.step_fn(x, y)
                self.scheduler.step()
                self.step += 1
                self.epoch_step += 1
                pending.append((self.step, total, losses))
                if len(pending) >= check_every:
                    self._check_finite(pending)
                    if self._epoch_losses:
                        bar.set_postfix({**{k: f"{v:.4g}" for k, v in self._epoch_losses[-1].items()}, "run ETA": self._run_eta()}, refresh=False)
                    if time.monotonic() - self._last_save >= save_every:
                        self._save_last()
                bar.update(1)
                if tc["max_steps"] and self.step >= tc["max_steps"]:
                    stop = True
                    break
            self._check_finite(pending)
            bar.close()
            metrics = evaluate(self.model.student, self.task, val_loader, self.device, self.amp_dtype)
            train_means = {f"train_{k}": float(np.mean([d[k] for d in self._epoch_losses])) for k in (self._epoch_losses[0] if self._epoch_losses else {})}
            finished_epoch = self.epoch_step >= self.steps_per_epoch
            record = {"epoch": self.epoch + 1, "step": self.step, **train_means, **{k: v for k, v in metrics.items() if not isinstance(v, list)}}
            if finished_epoch or stop:
                self.epoch += 1 if finished_epoch else 0
                self.epoch_step = 0 if finished_epoch else self.epoch_step
            primary = metrics[self.task.primary_metric]
            improved = self.best is None or (primary > self.best if self.task.higher_is_better else primary < self.best)
            if improved:
                self.best = primary
            if self.dist.is_main:
                append_jsonl(self.out / "metrics.jsonl", record)
                if self.model.distiller is not None:
                    sv = self.model.distiller.singular_values().tolist()
                    append_jsonl(self.out / "spectrum.jsonl", {"epoch": record["epoch"], "step": self.step, "singular_values": sv})
                self._save_last(metrics)
                if improved:
                    ckpt_io.save(self.out / "best.pt", self._checkpoint(metrics))
                self._print_epoch(record)
        summary = {"run_dir": str(self.out), "epochs": self.epoch, "steps": self.step, "best": {self.task.primary_metric: self.best},
                   "final": {k: v for k, v in metrics.items() if not isinstance(v, list)}}
        if self.dist.is_main:
            atomic_write_json(self.out / "summary.json", summary)
        cleanup(self.dist)
        return summary

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
        print(f"epoch {record['epoch']}/{self.cfg['train']['epochs']} (step {record['step']}/{self.total_steps}){eta}: {text}", flush=True)
