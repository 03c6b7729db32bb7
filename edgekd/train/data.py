"""Torch side of the data: task samples as tensors, a resumable epoch sampler, loaders."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..data.transforms import augment, normalise, resize_sample


class TaskDataset(Dataset):
    """(normalised image, task target) pairs from a numpy dataset.

    Augmentation draws from ``default_rng([seed, epoch, index])``: the same
    sample gets the same augmentation whatever the worker count or a resume.

    With ``teacher_view=True`` items are ``(x, y, x_teacher, key)``: the teacher sees the
    same geometry (flip, crop) but not the colour jitter, so that without random crops
    its input depends only on (scene, flip), ``key = 2 * index + flipped``, and its
    features can be cached (:class:`edgekd.train.teacher_cache.TeacherCache`).
    """

    def __init__(self, source, task, image_size, augment_data: bool = False, seed: int = 0, teacher_view: bool = False):
        self.source, self.task = source, task
        self.image_size = tuple(image_size)
        self.augment_data, self.seed = augment_data, int(seed)
        self.teacher_view = teacher_view
        self.epoch = 0

    @property
    def crops(self) -> bool:
        """Random crops make the teacher's input differ every epoch (where the task allows them)."""
        return self.augment_data and self.task.may_crop

    def __len__(self):
        return len(self.source)

    def __getitem__(self, i):
        # The sampler sends (epoch, index): workers can persist across epochs and still augment by epoch.
        epoch, i = i if isinstance(i, tuple) else (self.epoch, i)
        s = self.source[i]
        if self.augment_data:
            s = augment(s, np.random.default_rng([self.seed, epoch, int(i)]), self.task.sample_keys, crop=self.crops)
        s = resize_sample(s, *self.image_size, self.task.sample_keys)
        x = torch.from_numpy(normalise(self.task.input_image(s)))
        y = self.task.target(s)
        y = torch.from_numpy(np.array(y)) if not isinstance(y, int) else torch.tensor(y)  # a copy: PIL arrays are read-only
        if not self.teacher_view:
            return x, y
        clean = resize_sample({"image": s.get("geometric_image", s["image"])}, *self.image_size, self.task.sample_keys)
        xt = torch.from_numpy(normalise(self.task.input_image({**s, **clean})))
        return x, y, xt, torch.tensor(2 * int(i) + int(s.get("flipped", False)))


class EpochSampler(Sampler):
    """A permutation that depends only on (seed, epoch), sharded by rank, optionally skipping
    the first ``start`` global batches (to resume mid-epoch on exactly the same data order)."""

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1, shuffle: bool = True):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world, self.shuffle = rank, world, shuffle
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0):
        self.epoch, self.start = epoch, start_batch

    def steps_per_epoch(self) -> int:
        # drop_last semantics on the global batch: every step sees a full global batch.
        return max(1, self.n // (self.batch_size * self.world)) if self.n >= self.batch_size * self.world else 1

    def _indices(self):
        if self.shuffle:
            perm = np.random.default_rng([self.seed, 7919, self.epoch]).permutation(self.n)
        else:
            perm = np.arange(self.n)
        g = self.batch_size * self.world
        steps = self.steps_per_epoch()
        if self.n < g:  # tiny datasets: repeat to fill one global batch
            perm = np.resize(perm, g)
        perm = perm[: steps * g].reshape(steps, self.world, self.batch_size)
        return perm[self.start :, self.rank].reshape(-1)

    def __iter__(self):
        return iter([(self.epoch, int(i)) for i in self._indices()])

    def __len__(self):
        return len(self._indices())


def make_train_loader(ds: TaskDataset, sampler: EpochSampler, workers: int, pin: bool) -> DataLoader:
    """One loader for the whole run: its workers persist, the sampler tells them the epoch."""
    return DataLoader(ds, batch_size=sampler.batch_size, sampler=sampler, num_workers=workers, pin_memory=pin,
                      drop_last=False, persistent_workers=workers > 0, worker_init_fn=_ignore_ctrl_c)


def _ignore_ctrl_c(worker_id: int) -> None:
    """Ctrl-C reaches the loader's workers too (one process group); the main process stops the run at a step
    boundary (train/stop.py), so a worker must not die of it first."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def make_val_loader(ds: TaskDataset, batch_size: int, workers: int, pin: bool) -> DataLoader:
    return DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=workers, pin_memory=pin, persistent_workers=workers > 0,
                      worker_init_fn=_ignore_ctrl_c)
