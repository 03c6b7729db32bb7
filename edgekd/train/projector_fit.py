"""Does the projector select or memorise?  Its fit (R^2) on training vs validation images (issue 24).

``P`` is fitted on the training batches' rows.  With fewer rows than teacher channels it can fit any
batch: it then explains the student's features on the training images and not on unseen ones, and
the distillation term constrains nothing.  Each epoch (and before the first step) the projector's R^2
(:meth:`edgekd.distill.Distiller.fit_r2`) is measured on a fixed set of un-augmented training images
and of validation images, in eval mode and without gradients, inside
:func:`edgekd.train.probe.unchanged`: the measurement changes nothing in the run.  The teacher's
features of those images are computed once (the teacher is frozen, the images fixed).
"""

from __future__ import annotations

import torch

from .probe import unchanged
from .step import mixed_precision

# The memorisation warning: P explains at least MEMORISING_TRAIN of its target on training images and
# the validation fit is MEMORISING_GAP (R^2 points) or more below that.
MEMORISING_TRAIN = 0.5
MEMORISING_GAP = 0.3
MEMORISING_RULE = f"training R^2 >= {MEMORISING_TRAIN} and validation R^2 at least {MEMORISING_GAP} below it"


class ProjectorFit:
    """``measure(model) -> {"r2_train", "r2_val"}`` on the first ``n`` images of each dataset."""

    def __init__(self, train_ds, val_ds, n: int, teacher_features, device, memory_format, amp_dtype):
        self.n, self.teacher, self.device = n, teacher_features, device
        self.memory_format, self.amp_dtype = memory_format, amp_dtype
        self.images = {split: torch.stack([ds[i][0] for i in range(min(n, len(ds)))]) for split, ds in (("train", train_ds), ("val", val_ds))}
        self._zt: dict = {}

    def _teacher(self, split: str, x):
        if split not in self._zt:
            self._zt[split] = self.teacher.compute(x)
        return self._zt[split]

    @torch.no_grad()
    def measure(self, model) -> dict:
        student = model.student
        was_training = student.training
        out = {}
        with unchanged(model, device=self.device):
            student.eval()
            try:
                for split, cpu_x in self.images.items():
                    x = cpu_x.to(self.device, memory_format=self.memory_format)
                    with mixed_precision(self.amp_dtype):
                        zs = student(x, return_features=True)[1]
                        out[f"r2_{split}"] = model.distiller.fit_r2(zs, self._teacher(split, x))
            finally:
                student.train(was_training)
        return out


def memorising(fit: dict) -> bool:
    """A good training fit (R^2 >= ``MEMORISING_TRAIN``) that is ``MEMORISING_GAP`` or more above the validation fit."""
    return fit["r2_train"] >= MEMORISING_TRAIN and fit["r2_train"] - fit["r2_val"] >= MEMORISING_GAP


def memorising_warning(fit: dict, epoch: int) -> str:
    return (f"warning: the projector memorises (epoch {epoch}): it explains R^2 {fit['r2_train']:.2f} of its target on training "
            f"images but {fit['r2_val']:.2f} on validation images; give it more feature rows per "
            f"batch (--image-size, --batch-size) or shrink it (--projector-shrinkage), see docs/distillation.md")
