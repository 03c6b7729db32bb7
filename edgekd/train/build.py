"""The parts of a training run, built from a resolved config: each function returns plain objects.

:class:`edgekd.train.loop.Trainer` calls them in this file's order; the order is part of the
behaviour: initial weights are drawn from torch's generator (seeded once) in creation order.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import torch

from ..config import RunConfig
from ..errors import EdgekdError
from .data import EpochSampler, TaskDataset
from .distributed import DistInfo, init_distributed
from .model import DistillModel


def pick_device(name: str) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise EdgekdError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu or auto")
        return torch.device("cuda")
    return torch.device("cpu")


def setup_device(name: str) -> tuple[torch.device, DistInfo]:
    """The training device and the torchrun process group (each process on its own GPU)."""
    device = pick_device(name)
    dist = init_distributed(device.type)
    if device.type == "cuda" and dist.enabled:
        device = torch.device("cuda", dist.local_rank)
    return device, dist


def task_args_for(cfg: RunConfig | dict, train_source) -> dict:
    """Arguments that rebuild the task later (class count and names, depth range, eval crop): the task says which."""
    from ..tasks import task_class

    cfg = RunConfig.coerce(cfg)
    return task_class(cfg.model.task).args_from_source(train_source, cfg)


# ----------------------------------------------------------------------------- data
def open_sources(cfg: RunConfig | dict, progress: bool) -> tuple:
    """The training and validation datasets (numpy side), rendered up front when synthetic."""
    from ..data import open_dataset

    cfg = RunConfig.coerce(cfg)
    tc, d = cfg.train, cfg.data
    size, data, fmt = d.image_size, d.data, d.data_format
    # The data's seed is its own: seeds of a comparison vary the initialisation and order, not the scenes.
    kw = {"task": cfg.model.task, "direction": d.direction, "depth_scale": d.depth_scale}
    train_src = open_dataset(data, "train", size, tc.train_size, d.seed, fmt, **kw)
    val_src = open_dataset(data, "val", size, tc.val_size, d.seed, fmt, **kw)
    for name, src in (("training", train_src), ("validation", val_src)):
        if len(src) == 0:
            raise EdgekdError(f"the {name} split of {data} is empty; check the data path or --train-size/--val-size")
        if hasattr(src, "prerender"):  # finite synthetic sets: render once, shared by loader workers
            _prerender(src, name, size, tc.workers, progress)
    return train_src, val_src


SMALL_VAL = 8  # fewer validation images than this and a metric is a few images' luck


def data_warnings(cfg: RunConfig | dict, train_src, val_src) -> list[str]:
    """One line each for data that trains but cannot mean what it seems: a validation split too small to judge a
    model by, images squashed to another aspect ratio (data on disk only; synthetic scenes are rendered to size)."""
    cfg = RunConfig.coerce(cfg)
    data = cfg.data.data
    if data == "synthetic":
        return []
    notes = []
    if 0 < len(val_src) < SMALL_VAL:
        capped = len(val_src) == cfg.train.val_size
        how = (f"raise --val-size {cfg.train.val_size}" if capped else
               "add images to its val/ or test/ folder or list (a folder without them keeps about 10% of its images for validation)")
        notes.append(f"warning: the validation split of {data} has {len(val_src)} image{'s' if len(val_src) != 1 else ''}: its metrics "
                     f"say little about the model; give it at least {SMALL_VAL}: {how}")
    h, w = cfg.data.image_size
    img = train_src[0]["image"] if len(train_src) else None
    if img is not None:
        sh, sw = img.shape[:2]
        if abs(math.log((sw / sh) / (w / h))) > 0.05:
            near = max(1, round(h * sw / sh / 32)) * 32
            notes.append(f"warning: the images of {data} are {sh}x{sw} (width/height {sw / sh:.2f}) and are resized to {h}x{w} "
                         f"({w / h:.2f}): squashed, not cropped; keep their shape with --image-size {h} {near}")
    return notes


def _prerender(src, name: str, size, workers: int, progress: bool):
    from ..data.scene_cache import cache_root

    t0, procs = time.monotonic(), max(workers, os.cpu_count() or 1)
    bar = _RenderProgress(name, t0, f"at {size[0]}x{size[1]} ({procs} processes)") if progress else None
    from_disk = src.prerender(procs, progress=bar)
    if progress and from_disk:
        print(f"  {from_disk} of {len(src)} {name} scenes at {size[0]}x{size[1]} read from the scene cache ({cache_root()}; "
              "EDGEKD_CACHE=off turns it off, deleting the folder clears it)", flush=True)
    if progress and time.monotonic() - t0 > 2 and len(src) > from_disk:
        print(f"  rendered {len(src) - from_disk} {name} scenes in {time.monotonic() - t0:.0f} s ({procs} processes)", flush=True)


class _RenderProgress:
    """A line every few seconds while scenes render, with the count and an ETA (quiet for a short render)."""

    EVERY_S = 5.0

    def __init__(self, name: str, t0: float, how: str):
        self.name, self.t0, self.last, self.how = name, t0, t0, how

    def __call__(self, done: int, total: int) -> None:
        if done == 0:  # minutes for a full set on a CPU: never silently
            print(f"rendering {total} {self.name} scenes {self.how}...", flush=True)
            return
        now = time.monotonic()
        if now - self.last < self.EVERY_S or done == total:
            return
        self.last = now
        eta = (now - self.t0) / done * (total - done)
        print(f"  rendering {self.name} scenes: {done}/{total} ({100 * done // total}%), ETA {eta:.0f} s", flush=True)


@dataclass
class Datasets:
    train: TaskDataset
    val: TaskDataset
    train_eval: torch.utils.data.Dataset | None  # a fixed un-augmented training subset, or None


def build_datasets(cfg: RunConfig | dict, train_src, val_src, task, teacher_view: bool) -> Datasets:
    cfg = RunConfig.coerce(cfg)
    tc, size = cfg.train, cfg.data.image_size
    train = TaskDataset(train_src, task, size, augment_data=tc.augment, seed=tc.seed, teacher_view=teacher_view)
    val = TaskDataset(val_src, task, size)
    # A fixed subset of the training scenes, un-augmented: the train/val gap shows overfitting (issue 11).
    n_fit = min(tc.train_eval_size, len(train_src))
    train_eval = torch.utils.data.Subset(TaskDataset(train_src, task, size), range(n_fit)) if n_fit else None
    return Datasets(train, val, train_eval)


# ----------------------------------------------------------------------------- models
def has_teacher(cfg: RunConfig | dict) -> bool:
    return (RunConfig.coerce(cfg).distill.teacher or "none").strip() != "none"


def build_model(cfg: RunConfig | dict, task, log, choose_projection=None) -> tuple[DistillModel, torch.nn.Module | None]:
    """The trained module (student, projector, spectral regulariser) and the frozen teacher (or None).

    A projection chosen by a rule (``--projection auto``) is decided by ``choose_projection(student, teacher)``
    between the teacher and the projector: the projector then draws the same initial weights as in a run
    given the chosen projection (the measurement itself draws nothing, :mod:`edgekd.train.probe`)."""
    from ..distill import Distiller
    from ..distill.registry import get_projection
    from ..models import create_student, create_teacher

    cfg = RunConfig.coerce(cfg)
    dc = cfg.distill
    student = create_student(cfg, task, log=log)
    teacher = create_teacher(dc.teacher, dc.teacher_arch, dc.teacher_weights or None, dc.teacher_layer or None,
                             dc.teacher_norm or None, student.stride, tap=dc.teacher_tap)
    distiller = None
    if teacher is not None:
        projection = dc.projection
        if get_projection(projection).maps == "chosen":
            if choose_projection is None:
                raise EdgekdError(f"--projection {projection} needs training batches to decide; it is resolved by edgekd distill")
            projection = choose_projection(student, teacher)
        distiller = Distiller(dc.method, projection, student.feature_channels, teacher.channels, dc.normalize)
    spectral = _build_spectral(cfg, student)
    # "auto" weights are set from gradient norms before the first step (train/strength.py).
    numeric = lambda w: 0.0 if w == "auto" else w  # noqa: E731
    model = DistillModel(student, task, distiller, spectral, numeric(dc.weight), numeric(dc.spectral_weight))
    return model, teacher


def _build_spectral(cfg: RunConfig, student):
    from ..distill import SpectralRegulariser

    dc = cfg.distill
    if dc.spectral >= student.feature_channels:
        raise EdgekdError(f"--spectral {dc.spectral} keeps all {student.feature_channels} channels of {cfg.model.student}: "
                          f"nothing is suppressed; use a rank below {student.feature_channels} (the paper uses 2 to 8)")
    if dc.spectral <= 0:
        return None
    return SpectralRegulariser(dc.spectral, dc.spectral_iters, reduction="elements", norm=dc.spectral_norm, scope=dc.spectral_scope)


@dataclass
class Placement:
    """How tensors live on the device: autocast dtype (None = fp32), teacher weights' dtype, memory format."""

    amp_dtype: torch.dtype | None
    teacher_dtype: torch.dtype
    memory_format: torch.memory_format


def place_on_device(model, teacher, device: torch.device) -> Placement:
    cuda = device.type == "cuda"
    # The teacher only runs forward (docs/method.md §1): bf16 weights on GPU halve its cost.
    p = Placement(torch.bfloat16 if cuda else None, torch.bfloat16 if cuda else torch.float32,
                  torch.channels_last if cuda else torch.contiguous_format)
    model.to(device, memory_format=p.memory_format)
    if teacher is not None:
        teacher.to(device, dtype=p.teacher_dtype, memory_format=p.memory_format)
    return p


def make_teacher_cache(teacher, mode: str, compile_mode: str, distributed: bool, train_ds: TaskDataset):
    """A :class:`~edgekd.train.teacher_cache.TeacherCache` where it is exact and allowed, else None."""
    from .teacher_cache import TeacherCache

    if teacher is None or mode == "off":
        return None
    if distributed:  # under torchrun the cached and uncached runs were seen to differ: not yet trusted there
        return None
    if train_ds.crops or compile_mode == "graph":
        why = "random crops change the teacher's input every epoch" if train_ds.crops else "--compile graph runs the teacher inside the graph"
        if mode == "on":
            raise EdgekdError(f"distill.cache_teacher = on, but {why}; use cache_teacher = auto or off (or --set train.augment=false)")
        return None
    return TeacherCache()


def wrap_distributed(model: DistillModel, dist: DistInfo, device: torch.device) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(model, what the step calls): under torchrun a DDP wrapper, and on GPUs SyncBatchNorm in the model."""
    if not dist.enabled:
        return model, model
    from torch.nn.parallel import DistributedDataParallel as DDP

    cuda = device.type == "cuda"
    ids = [device.index] if cuda else None
    if cuda:  # per-GPU batches are small for dense tasks: normalise over the global batch
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model, DDP(model, device_ids=ids)


# ----------------------------------------------------------------------------- optimisation
def param_groups(model: DistillModel, cfg: RunConfig | dict) -> list:
    """Student and projector(s) as separate groups: the projector has its own lr and weight decay
    (``distill.projector_lr``, 0 = the student's; ``distill.projector_weight_decay``)."""
    cfg = RunConfig.coerce(cfg)
    proj = [p for p in (model.distiller.parameters() if model.distiller is not None else []) if p.requires_grad]
    ids = {id(p) for p in proj}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
    groups = [{"params": rest, "name": "student"}]
    if proj:
        groups.append({"params": proj, "name": "projector", "lr": cfg.distill.projector_lr or cfg.train.lr,
                       "weight_decay": cfg.distill.projector_weight_decay})
    return groups


def build_optimizer(model: DistillModel, cfg: RunConfig | dict, device: torch.device) -> torch.optim.Optimizer:
    cfg = RunConfig.coerce(cfg)
    kw = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(param_groups(model, cfg), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay, **kw)


def lr_lambda(warmup: int, total: int):
    """Linear warm-up, then cosine decay to 1% (as a function of the optimiser step)."""

    def f(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        p = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * p))

    return f


@dataclass
class Schedule:
    """The data order (resumable sampler) and the learning-rate schedule over the run's steps."""

    sampler: EpochSampler
    steps_per_epoch: int
    total_steps: int
    warmup_steps: int
    warmup_note: str  # a warning line when the configured warm-up does not fit this run, else ""
    scheduler: torch.optim.lr_scheduler.LambdaLR


def build_schedule(cfg: RunConfig | dict, n_train: int, dist: DistInfo, optimizer) -> Schedule:
    from ..config import effective_warmup

    cfg = RunConfig.coerce(cfg)
    tc = cfg.train
    sampler = EpochSampler(n_train, tc.batch_size, tc.seed, dist.rank, dist.world)
    steps_per_epoch = sampler.steps_per_epoch()
    total = tc.epochs * steps_per_epoch
    if tc.max_steps:
        total = min(total, tc.max_steps)
    warmup, note = effective_warmup(tc, total)  # scaled to short runs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(warmup, total))
    apply_projector_shrinkage(optimizer, cfg.distill.projector_shrinkage, lr_lambda(warmup, total), total)
    return Schedule(sampler, steps_per_epoch, total, warmup, note, scheduler)


# ----------------------------------------------------------------------------- the projector's decay
def decay_shrinkage(lr: float, factors: list, weight_decay: float) -> float:
    """What AdamW's decoupled decay alone leaves of a weight after the run: prod_t (1 - lr_t * wd)."""
    return math.exp(sum(math.log1p(-min(lr * f * weight_decay, 1.0 - 1e-12)) for f in factors))


def weight_decay_for_shrinkage(lr: float, factors: list, shrinkage: float) -> float:
    """The decoupled weight decay whose product over the schedule is ``shrinkage`` (bisection; 0 for 1.0)."""
    if shrinkage >= 1.0:
        return 0.0
    hi = 1.0 / (lr * max(factors))  # at this decay the peak step would zero the weight
    lo = 0.0
    for _ in range(60):  # 2^-60 of the bracket: exact to double precision
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if decay_shrinkage(lr, factors, mid) > shrinkage else (lo, mid)
    return 0.5 * (lo + hi)


def apply_projector_shrinkage(optimizer, shrinkage: float, schedule, total_steps: int) -> None:
    """``distill.projector_shrinkage`` > 0: set the projector group's weight decay from it (docs/distillation.md);
    either way record the shrinkage the run's decay gives as the group's ``shrinkage`` (for the diagnostics)."""
    group = next((g for g in optimizer.param_groups if g.get("name") == "projector"), None)
    if group is None:
        return
    factors = [schedule(t) for t in range(total_steps)]
    peak = group.get("initial_lr", group["lr"])  # the scheduler has already scaled "lr" by its first factor
    if shrinkage > 0:
        group["weight_decay"] = weight_decay_for_shrinkage(peak, factors, shrinkage)
    group["shrinkage"] = decay_shrinkage(peak, factors, group["weight_decay"])
