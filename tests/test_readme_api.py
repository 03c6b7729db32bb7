"""The README's Python API example runs as written (with a real edgekd student and teacher)."""

import re
from pathlib import Path

import torch

from edgekd.config import load_profile
from edgekd.models import create_student, create_teacher
from edgekd.tasks import create_task


def test_readme_example_runs_and_trains_the_projector():
    text = (Path(__file__).parent.parent / "README.md").read_text()
    block = re.search(r"## Python API.*?```python\n(.*?)```", text, re.S).group(1)
    task = create_task("depth")
    cfg = load_profile("jetson", {"data": {"image_size": [64, 64]}})
    net = create_student(cfg, task)
    teacher = create_teacher("random:resnet18", "")
    x = torch.randn(2, 3, 64, 64)
    y = torch.rand(2, 64, 64) * 5 + 1
    env = {
        "student": net,
        "teacher": lambda t: torch.nn.functional.interpolate(teacher(t), size=(2, 2)),
        "teacher_channels": teacher.channels,
        "student_channels": net.feature_channels,
        "loader": [(x, y), (x, y)],
        "task_loss": task.loss,
    }
    exec(compile(block, "README.md", "exec"), env)
    P = env["P"]
    assert P.weight.grad is not None and env["loss"].item() > 0

