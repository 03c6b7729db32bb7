"""The README's Python API example runs as written: it builds its own student and teacher."""

import re
from pathlib import Path

import torch


def test_readme_example_runs_and_trains_the_projector():
    text = (Path(__file__).parents[2] / "README.md").read_text()
    block = re.search(r"## Python API.*?```python\n(.*?)```", text, re.S).group(1)
    x = torch.randn(2, 3, 64, 64)
    y = torch.rand(2, 64, 64) * 5 + 1
    env = {"loader": [(x, y), (x, y)]}  # the only name the snippet does not define
    exec(compile(block, "README.md", "exec"), env)
    assert env["student"].feature_channels == 320 and env["teacher"].channels == 512
    P = env["P"]
    assert P.weight.grad is not None and env["loss"].item() > 0
    assert all(p.grad is None for p in env["teacher"].parameters())  # frozen
