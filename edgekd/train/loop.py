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
    """Arguments that rebuild the task later (class count and names, depth range, eval crop): the task says which."""
    from ..tasks import task_class

    return task_class(cfg["model"]["task"]).args_from_source(train_source, cfg)


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

        self.log = print if self.dist.is_main and progress else (lambda *a, **k: None)
        student = create_student(cfg, self.task, log=self.log)
        self.teacher = create_teacher(dc["teacher"], dc["teacher_arch"], dc["teacher_weights"] or None,
                                      dc.get("teacher_layer") or None, dc.get("teacher_norm") or None, student.stride,
                                      tap=dc["teacher_tap"])
        distiller = None
        if self.teacher is not None:
            distiller = Distiller(dc["method"], dc["projection"], student.feature_channels, self.teacher.channels, dc["normalize"])
        if dc["spectral"] >= student.feature_channels:
            raise EdgekdError(f"--spectral {dc['spectral']} keeps all {student.feature_channels} channels of {cfg['model']['student']}: "
                              f"nothing is suppressed; use a rank below {student.feature_channels} (the paper uses 2 to 8)")
        spectral = None
        if dc["spectral"] > 0:
            spectral = SpectralRegulariser(dc["spectral"], dc["spectral_iters"], reduction="elements",
                                           norm=dc["spectral_norm"], scope=dc["spectral_scope"])
        # "auto" weights are set from gradient norms before the first step (train/strength.py).
        numeric = lambda w: 0.0 if w == "auto" else w  # noqa: E731
        self.model = DistillModel(student, self.task, distiller, spectral, numeric(dc["weight"]), numeric(dc["spectral_weight"]))

        cuda = self.device.type == "cuda"
        self.amp_dtype = torch.bfloat16 if cuda else None
        mem = torch.channels_last if cuda else torch.contiguous_format
        self.model.to(self.device, memory_format=mem)
        # The teacher only runs forward: bf16 weights on GPU halve its cost (DESIGN.md §1).
        self._teacher_dtype = torch.bfloat16 if cuda else torch.float32
        if self.teacher is not None:
            self.teacher.to(self.device, dtype=self._teacher_dtype, memory_format=mem)
        self.memory_format = mem

        kw = {"fused": True} if cuda else {}
        self.optimizer = torch.optim.AdamW(self._param_groups(), lr=tc["lr"], weight_decay=tc["weight_decay"], **kw)

        bs = tc["batch_size"]
        self.train_ds = TaskDataset(self.train_src, self.task, size, augment_data=tc["augment"], seed=tc["seed"],
                                    teacher_view=self.teacher is not None)
        self.val_ds = TaskDataset(self.val_src, self.task, size)
        # A fixed subset of the training scenes, un-augmented: the train/val gap shows overfitting (issue 11).
        n_fit = min(tc["train_eval_size"], len(self.train_src))
        self.train_eval_ds = torch.utils.data.Subset(TaskDataset(self.train_src, self.task, size), range(n_fit)) if n_fit else None
        self.teacher_cache = self._make_teacher_cache(dc["cache_teacher"], cfg["model"]["compile"])
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
        self.diagnostics = None
        if resume:
            self._resume()

    def _param_groups(self) -> list:
        """Student and projector(s) as separate groups: the projector has its own lr and weight decay
        (``distill.projector_lr``, 0 = the student's; ``distill.projector_weight_decay``)."""
        dc, tc = self.cfg["distill"], self.cfg["train"]
        proj = [p for p in (self.model.distiller.parameters() if self.model.distiller is not None else []) if p.requires_grad]
        ids = {id(p) for p in proj}
        rest = [p for p in self.model.parameters() if p.requires_grad and id(p) not in ids]
        groups = [{"params": rest, "name": "student"}]
        if proj:
            groups.append({"params": proj, "name": "projector", "lr": dc["projector_lr"] or tc["lr"],
                           "weight_decay": dc["projector_weight_decay"]})
        return groups

    def _make_teacher_cache(self, mode: str, compile_mode: str):
        from .teacher_cache import TeacherCache

        if self.teacher is None or mode == "off":
            return None
        if self.dist.enabled:  # under torchrun the cached and uncached runs were seen to differ: not yet trusted there
            return None
        if self.train_ds.crops or compile_mode == "graph":
            why = "random crops change the teacher's input every epoch" if self.train_ds.crops else "--compile graph runs the teacher inside the graph"
            if mode == "on":
                raise EdgekdError(f"distill.cache_teacher = on, but {why}; use cache_teacher = auto or off (or --set train.augment=false)")
            return None
        return TeacherCache()

    # ----------------------------------------------------------------- set-up helpers
    def _check_run_dir(self, resume: bool, overwrite: bool):
        """Refuse a bad --out now; the folder itself is created by :meth:`run`, once every check has passed."""
        from ..fileio import check_out_dir

        last = self.out / "last.pt"
        if resume and not last.exists():
            raise EdgekdError(f"--resume: {last} does not exist; start the run without --resume")
        if not resume and not overwrite and last.exists():
            raise EdgekdError(f"{self.out} already holds a run; add --resume to continue it, --overwrite to replace it, or choose --out")
        if self.dist.is_main:
            check_out_dir(self.out)
        self._resuming, self._overwrite = resume, overwrite

    def _prepare_run_dir(self):
        """Create the run folder and make its logs agree with the checkpoint the run starts from."""
        from ..fileio import truncate_jsonl

        try:
            self.out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise EdgekdError(f"output directory {self.out} is not writable ({e.strerror}); choose another --out") from None
        logs = ("metrics.jsonl", "steps.jsonl", "spectrum.jsonl")
        if self._resuming:  # records past the checkpoint's step will be written again: drop them
            for name in logs:
                truncate_jsonl(self.out / name, lambda r: r.get("step", 0) <= self.step)
            return
        # A fresh run: logs of an earlier attempt (interrupted before its first checkpoint, or --overwrite) are stale.
        stale = logs + (("last.pt", "best.pt", "summary.json", "diagnostics.json") if self._overwrite else ())
        for name in stale:
            (self.out / name).unlink(missing_ok=True)

    def _resume(self):
        ck = ckpt_io.load_for_resume(self.out / "last.pt")
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
        self._last_metrics = ck.get("metrics") or {}
        torch.set_rng_state(ck["rng"]["torch"])

    # ----------------------------------------------------------------- checkpoints and logs
    def _checkpoint(self, metrics=None) -> dict:
        return ckpt_io.make_checkpoint(
            cfg=self.cfg, task_args=self.task_args, student=self.model.student, extra=self.model.extra_modules(),
            optimizer=self.optimizer, scheduler=self.scheduler, epoch=self.epoch, step=self.step,
            epoch_step=self.epoch_step, best=self.best, metrics=metrics or {}, loss_weights=self.model.weights(),
        )

    def _save_last(self, metrics=None):
        if self.dist.is_main:
            ckpt_io.save(self.out / "last.pt", self._checkpoint(metrics))
        self._last_save = time.monotonic()
        self._saved_once = True

    # ----------------------------------------------------------------- one step
    def _teacher_features(self, x):
        if self.teacher is None:
            return None
        # The teacher's weights already have the compute dtype (bf16 on GPU): no autocast needed.
        with torch.no_grad():
            return self.teacher(x.to(self._teacher_dtype))

    def _teacher_async(self, x, keys=None):
        """On CUDA the frozen teacher runs on a side stream, overlapping the student's forward pass;
        the student waits for it only where the distillation term needs ``Z_t``.  With a cache,
        known (scene, flip) keys skip the teacher."""
        if self.teacher is not None and self.teacher_cache is not None and keys is not None:
            return self.teacher_cache.features(x, keys, self._teacher_features)
        if self.teacher is None or self.device.type != "cuda":
            return self._teacher_features(x)
        if self._teacher_stream is None:
            self._teacher_stream = torch.cuda.Stream(self.device)
        side = self._teacher_stream
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            zt = self._teacher_features(x)
        return PendingFeatures(zt, side)

    def _eager_step(self, x, y, xt=None, keys=None):
        zt = self._teacher_async(x if xt is None else xt, keys)
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

            self._prepare_run_dir()
            save_resolved(self.cfg, self.out)
        pin = self.device.type == "cuda"
        workers = min(tc["workers"], os.cpu_count() or 1)  # more loader processes than cores only thrash
        val_loader = make_val_loader(self.val_ds, tc["batch_size"], workers, pin)
        check_every = 1 if self.device.type == "cpu" else 10
        self._t_run, self._step0 = time.monotonic(), self.step  # for the whole-run ETA
        self._last_save = time.monotonic()
        self._saved_once = self._resuming
        save_every = tc["save_every_min"] * 60.0
        metrics = getattr(self, "_last_metrics", {})  # a resumed, already finished run keeps its figures
        stop = bool(tc["max_steps"]) and self.step >= tc["max_steps"]
        loader = make_train_loader(self.train_ds, self.sampler, workers, pin)
        fit_loader = make_val_loader(self.train_eval_ds, tc["batch_size"], workers, pin) if self.train_eval_ds is not None else None
        if self.step == 0:
            self._calibrate_and_diagnose()
        last_batch = None
        while self.epoch < tc["epochs"] and not stop:
            self.sampler.set_epoch(self.epoch, self.epoch_step)
            self.ddp_model.train()
            self._epoch_losses = []
            pending = []
            # In a redirected log a bar writes every update: plain per-epoch lines there (see _print_epoch).
            bar = tqdm(total=self.steps_per_epoch, initial=self.epoch_step, disable=not (self.progress and sys.stderr.isatty()),
                       desc=f"epoch {self.epoch + 1}/{tc['epochs']}", unit="step", dynamic_ncols=True, leave=True)
            for batch in loader:
                last_batch = self._to_device(batch)
                total, losses = self.step_fn(*last_batch)
                self.scheduler.step()
                self.step += 1
                self.epoch_step += 1
                pending.append((self.step, total, losses))
                if len(pending) >= check_every:
                    self._check_finite(pending)
                    if self._epoch_losses:
                        bar.set_postfix({**{k: f"{v:.4g}" for k, v in self._epoch_losses[-1].items()}, "run ETA": self._run_eta()}, refresh=False)
                    # The first step is checkpointed at once: an early Ctrl-C still leaves something to resume.
                    if time.monotonic() - self._last_save >= save_every or not self._saved_once:
                        self._save_last()
                bar.update(1)
                if tc["max_steps"] and self.step >= tc["max_steps"]:
                    stop = True
                    break
            self._check_finite(pending)
            bar.close()
            train_means = {f"train_{k}": float(np.mean([d[k] for d in self._epoch_losses])) for k in (self._epoch_losses[0] if self._epoch_losses else {})}
            finished_epoch = self.epoch_step >= self.steps_per_epoch
            record = {"epoch": self.epoch + 1, "step": self.step, **train_means, **self._strength_record(last_batch)}
            if finished_epoch or stop:
                self.epoch += 1 if finished_epoch else 0
                self.epoch_step = 0 if finished_epoch else self.epoch_step
            every = tc["eval_every"]
            evaluate_now = stop or self.epoch >= tc["epochs"] or (every and record["epoch"] % every == 0)
            improved = False
            if evaluate_now:
                metrics = self._evaluate(val_loader, fit_loader)
                record.update(metrics)
                primary = metrics[self.task.primary_metric]
                improved = self.best is None or (primary > self.best if self.task.higher_is_better else primary < self.best)
                if improved:
                    self.best = primary
            if self.dist.is_main:
                append_jsonl(self.out / "metrics.jsonl", record)
                if self.model.distiller is not None:
                    d = self.model.distiller
                    append_jsonl(self.out / "spectrum.jsonl", {"epoch": record["epoch"], "step": self.step,
                                                               "singular_values": d.singular_values().tolist(),
                                                               "delta_singular_values": d.delta_singular_values().tolist()})
                self._save_last(metrics)
                if improved:
                    ckpt_io.save(self.out / "best.pt", self._checkpoint(metrics))
                self._print_epoch(record)
        summary = {"run_dir": str(self.out), "epochs": self.epoch, "steps": self.step, "best": {self.task.primary_metric: self.best},
                   "final": metrics, "loss_weights": self.model.weights(), "diagnostics": self.diagnostics}
        if self.dist.is_main:
            atomic_write_json(self.out / "summary.json", summary)
        cleanup(self.dist)
        return summary

    # ----------------------------------------------------------------- loss strength (train/strength.py)
    def _aux_terms(self) -> bool:
        return self.model.distiller is not None or self.model.spectral is not None

    def _term_norms(self, batches) -> dict:
        """Mean gradient norm of each term on ``Z_s`` over device batches, without side effects on
        BatchNorm statistics (the measurement must not change the run it measures)."""
        from .strength import mean_norms

        student = self.model.student
        saved = {k: v.clone() for k, v in student.state_dict().items() if "running" in k or "num_batches" in k}
        reduce = None
        if self.dist.enabled:
            import torch.distributed as tdist

            def reduce(v):
                v = v.to(self.device)
                tdist.all_reduce(v)
                return (v / self.dist.world).cpu()
        try:
            with torch.autocast("cuda", dtype=self.amp_dtype) if self.amp_dtype else nullcontext():
                return mean_norms([(x, y, self._teacher_async(xt, keys)) for x, y, xt, keys in batches], self.model, reduce)
        finally:
            student.load_state_dict(saved, strict=False)

    def _calibrate_and_diagnose(self):
        """Once, before the first step: gradient ratios at the configured weights, ``auto`` weights set
        from them, the rows-per-batch vs teacher-channels check; warnings in one line each."""
        from torch.utils.data import default_collate

        from .strength import auto_weight, ratios

        if not self._aux_terms():
            return
        dc = self.cfg["distill"]
        # Global batches, the same on every rank: the weights then equal a single process's with that batch.
        bs = self.cfg["train"]["batch_size"] * self.dist.world
        glob = EpochSampler(len(self.train_ds), bs, self.cfg["train"]["seed"])
        glob.set_epoch(0, 0)
        idx = list(glob)
        k = max(1, min(4, len(idx) // bs))
        batches = [self._to_device(default_collate([self.train_ds[t] for t in idx[j * bs:(j + 1) * bs]])) for j in range(k)]
        norms = self._term_norms(batches)
        at_one = ratios(norms, {"distill": 1.0, "spectral": 1.0})
        for term, key in (("distill", "weight"), ("spectral", "spectral_weight")):
            if term in norms and dc[key] == "auto":
                setattr(self.model, "weight" if term == "distill" else "spectral_weight", auto_weight(norms, term, dc["grad_ratio"]))
        x = batches[0][0]
        with torch.no_grad():
            zs_shape = self.model.student(x[:1], return_features=True)[1].shape
        rows = x.shape[0] * zs_shape[-2] * zs_shape[-1]
        self.diagnostics = {"batches": k, "grad_norms": norms, "ratio_at_weight_1": at_one, "weights": self.model.weights(),
                            "ratio": ratios(norms, self.model.weights()), "rows_per_batch": rows,
                            "teacher_channels": self.teacher.channels if self.teacher is not None else None,
                            "student_channels": zs_shape[1], "grad_ratio_target": dc["grad_ratio"]}
        self._report_diagnostics()

    def _report_diagnostics(self):
        import sys

        d = self.diagnostics
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.out / "diagnostics.json", d)
        parts = [f"{t} {d['ratio'][t]:.3g} (w={d['weights'][t]:.4g})" for t in d["ratio"]]
        self.log(f"step-0 gradient on Z_s relative to the task's: {', '.join(parts)}; rows per batch {d['rows_per_batch']}"
                 + (f" vs {d['teacher_channels']} teacher channels" if d["teacher_channels"] else ""))
        warn = []
        for t, r in d["ratio"].items():
            if r < 0.01:
                warn.append(f"warning: the {t} term's gradient is {100 * r:.2g}% of the task's: it barely acts; "
                            f"use --{'distill' if t == 'distill' else 'spectral'}-weight auto")
        if d["teacher_channels"] and d["rows_per_batch"] < d["teacher_channels"]:
            warn.append(f"warning: {d['rows_per_batch']} feature rows per batch < {d['teacher_channels']} teacher channels: "
                        f"the projector can fit any batch; use a larger --image-size or --batch-size")
        if self.dist.is_main:
            for w in warn:
                print(w, file=sys.stderr, flush=True)

    def _strength_record(self, batch) -> dict:
        """Weights and weighted gradient ratios on the epoch's last batch (logged each epoch)."""
        from .strength import ratios

        if batch is None or not self._aux_terms():
            return {}
        x, y, xt, keys = batch  # a few samples suffice for a ratio of norms (every loss is a batch mean)
        norms = self._term_norms([(x[:4], y[:4], xt[:4], None if keys is None else keys[:4])])
        w = self.model.weights()
        out = {f"weight_{t}": w[t] for t in ratios(norms, w)}
        out.update({f"grad_ratio_{t}": r for t, r in ratios(norms, w).items()})
        return out

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
        print(f"epoch {record['epoch']}/{self.cfg['train']['epochs']} (step {record['step']}/{self.total_steps}){eta}: {text}", flush=True)
