"""Student and teacher: shapes per task, a frozen teacher, where gradients go."""

import pytest
import torch

from edgekd.config import load_profile
from edgekd.distill import Distiller
from edgekd.distill.registry import list_projections
from edgekd.errors import EdgekdError
from edgekd.models import create_student, create_teacher
from edgekd.tasks import create_task, list_tasks
from edgekd.train.model import DistillModel


def cfg(student="mobilenetv2_100", size=(64, 64)):
    return load_profile("jetson", {"model": {"student": student}, "data": {"image_size": list(size)}})


# task -> (its arguments, the student's output for a 2x3x64x96 batch); a registered task missing here fails below
STUDENT_OUTPUTS = {
    "depth": ({}, (2, 1, 64, 96)),
    "segmentation": ({"num_classes": 6}, (2, 6, 64, 96)),
    "classification": ({"num_classes": 3}, (2, 3)),
    "colourisation": ({}, (2, 2, 64, 96)),
    "translation": ({}, (2, 3, 64, 96)),
}


@pytest.mark.parametrize("task", list_tasks())
def test_student_outputs(task):
    assert task in STUDENT_OUTPUTS, f"add task {task!r} to STUDENT_OUTPUTS: its arguments and the student's output shape"
    kw, out_shape = STUDENT_OUTPUTS[task]
    t = create_task(task, **kw)
    m = create_student(cfg(size=(64, 96)), t)
    out, z = m(torch.randn(2, 3, 64, 96), return_features=True)
    assert out.shape == out_shape
    assert z.shape == (2, 320, 2, 3)  # MobileNetV2's last stage, before any decoder
    if task == "depth":
        assert out.min() > 0 and out.max() <= t.max_depth + t.min_depth


def test_teacher_frozen_by_construction():
    t = create_teacher("random:resnet18", "vit_base_patch32_224")
    assert not any(p.requires_grad for p in t.parameters())
    t.train()
    assert not t.training and not any(m.training for m in t.modules())
    z = t(torch.randn(1, 3, 64, 64))
    assert z.shape == (1, 512, 2, 2) and not z.requires_grad


def test_vit_teacher_gives_a_grid_without_prefix_tokens():
    t = create_teacher("random", "vit_base_patch32_224")
    z = t(torch.randn(1, 3, 64, 96))
    assert z.shape == (1, 768, 2, 3)


def test_named_teacher_needs_local_weights():
    with pytest.raises(EdgekdError, match="--teacher-weights"):
        create_teacher("resnet18", "vit_base_patch32_224")


def test_unknown_teacher_name():
    with pytest.raises(EdgekdError, match="unknown teacher model"):
        create_teacher("random:resnet_nonexistent", "vit_base_patch32_224")


@pytest.mark.parametrize("projection", list_projections(chosen=False))
def test_gradients_reach_student_and_projector_never_teacher(projection):
    task = create_task("depth")
    student = create_student(cfg(), task)
    teacher = create_teacher("random:resnet18", "")
    dist = Distiller("fitnet", projection, student.feature_channels, teacher.channels)
    model = DistillModel(student, task, dist)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    opt_params = {id(p) for g in opt.param_groups for p in g["params"]}
    assert all(id(p) in opt_params for p in dist.parameters())
    x = torch.randn(2, 3, 64, 64)
    y = torch.rand(2, 64, 64) * 5 + 1
    before = dist.projector.weight.detach().clone()
    total, losses = model(x, y, teacher(x))
    total.backward()
    assert dist.projector.weight.grad is not None and dist.projector.weight.grad.abs().sum() > 0
    assert student.encoder.conv_stem.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())
    opt.step()
    assert not torch.equal(before, dist.projector.weight)
    assert set(losses) == {"task", "distill"}


def test_image_size_must_divide_stride():
    with pytest.raises(EdgekdError, match="not divisible by the stride 32"):
        create_student(cfg(size=(60, 64)), create_task("depth"))
