"""docs/architecture.md says a distance is one file plus one registration line: follow it literally."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from conftest import tiny

from edgekd.config import validate_profile
from edgekd.distill import registry
from edgekd.distill.distiller import Distiller
from edgekd.errors import EdgekdError

COSINE = '''
import torch.nn.functional as F


def cosine_loss(s, t):
    """1 - cosine similarity per position, averaged."""
    return (1 - F.cosine_similarity(s, t, dim=1)).mean()
'''


@pytest.fixture
def cosine_distance(tmp_path, monkeypatch):
    (tmp_path / "cosine_kd.py").write_text(COSINE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry._DISTANCES, "cosine", registry._DISTANCES["fitnet"])  # restored after the test
    registry.register_distance("cosine", "1 - cosine similarity per position", "cosine_kd:cosine_loss")
    yield "cosine"
    sys.modules.pop("cosine_kd", None)


def test_a_registered_distance_is_accepted_everywhere(cosine_distance):
    assert "cosine" in registry.list_distances()
    cfg = validate_profile({"distill": {"method": "cosine"}}, "a profile")  # the config check reads the registry
    assert cfg["distill"]["method"] == "cosine"
    for projection in registry.list_projections(chosen=False):
        d = Distiller("cosine", projection, student_channels=8, teacher_channels=16)
        zs = torch.randn(2, 8, 3, 4, requires_grad=True)
        loss = d(zs, torch.randn(2, 16, 3, 4))["distill"]
        loss.backward()
        assert torch.isfinite(loss) and zs.grad.abs().sum() > 0


def test_without_its_registration_the_name_is_refused():
    assert "cosine" not in registry.list_distances()
    with pytest.raises(EdgekdError, match="cosine"):
        validate_profile({"distill": {"method": "cosine"}}, "a profile")


# --- the task and backend recipes, taken from docs/architecture.md itself ---------------------------------------------

ARCHITECTURE = Path(__file__).parents[2] / "docs" / "architecture.md"


def recipe(title: str) -> list[str]:
    """The python blocks of the section ``## <title>`` of docs/architecture.md, dedented."""
    text = ARCHITECTURE.read_text().split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    return [textwrap.dedent(b) for b in re.findall(r"^ *```python\n(.*?)^ *```", text, flags=re.S | re.M)]


def _run(code: str, *args, cwd=None):
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


@pytest.fixture
def inverse_depth(tmp_path, monkeypatch):
    """docs' task recipe: its file in the tasks package, its line run as tasks/__init__.py would run it."""
    import edgekd.tasks as tasks

    module, line = recipe("How to add a task (one file + one line)")
    (tmp_path / "inverse_depth.py").write_text(module)
    monkeypatch.setattr(tasks, "__path__", [*tasks.__path__, str(tmp_path)])  # edgekd.tasks.inverse_depth is that file
    monkeypatch.setattr(tasks, "TASKS", tasks.TASKS.copy())  # restored after the test
    exec(line, vars(tasks))
    yield "inverse-depth", tmp_path
    sys.modules.pop("edgekd.tasks.inverse_depth", None)


def test_the_task_recipe_passes_the_task_tests(inverse_depth, tmp_path):
    import test_task_registry as t

    from edgekd.data import open_dataset

    name, _ = inverse_depth
    source = open_dataset("synthetic", "val", t.SIZE, 2, 0)
    t.test_task_interface(name, source)
    t.test_task_draws_and_describes_its_output(name, source)
    t.test_a_task_declares_every_map_it_reads(name, source)
    t.test_prediction_figure(name, source, tmp_path)
    assert validate_profile({"model": {"task": name}}, "a profile")["model"]["task"] == name
    assert not t.create_task(name).higher_is_better


@pytest.mark.slow  # 15 s on 2 cores; test_the_task_recipe_passes_the_task_tests covers the task, test_config the CLI's choices
def test_the_task_recipe_trains_from_the_command_line(inverse_depth, tmp_path):
    name, folder = inverse_depth
    _, line = recipe("How to add a task (one file + one line)")
    code = ("import sys, edgekd.tasks as tasks; tasks.__path__.append(sys.argv.pop(1)); "
            f"from edgekd.tasks import register_task; {line.strip()}; from edgekd.cli import main; sys.argv[0] = 'edgekd'; main()")
    res = _run(code, folder, "distill", "--task", name, "--teacher", "random:resnet18", *tiny(train=4, batch=4),
               "--out", tmp_path / "run")
    assert res.returncode == 0, res.stderr[-2000:]
    last = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["mae"] >= 0 and json.loads((tmp_path / "run" / "config.json").read_text())["model"]["task"] == name


def test_the_backend_recipe_benches_from_the_command_line(depth_onnx, tmp_path):
    (module,) = recipe("How to add a bench backend (one file)")
    (tmp_path / "ort_unoptimised.py").write_text(module)
    out = tmp_path / "bench.json"
    code = ("import sys, edgekd.bench.runners as runners; runners.__path__.append(sys.argv.pop(1)); "
            "from edgekd.cli import main; sys.argv[0] = 'edgekd'; main()")  # no registration call: the file is found
    res = _run(code, tmp_path, "bench", depth_onnx, "--backend", "ort-unoptimised", "--json", out, "--min-iters", "3",
               "--min-time", "0", "--warmup-iters", "1", "--warmup-time", "0", "--val-size", "4", "--quiet")
    assert res.returncode == 0, res.stderr[-2000:]
    r = json.loads(out.read_text())
    assert r["environment"]["backend"] == "ort-unoptimised" and "no graph optimisation" in r["environment"]["runtime"]
    acc = r["accuracy"]
    assert acc["metrics"]["d1"] == pytest.approx(acc["reference_fp32"]["d1"], abs=1e-3)  # same graph, same numbers
    listed = _run(code, tmp_path, "bench", "--help")
    assert "ort-unoptimised" in listed.stdout
    from edgekd.bench.runners import list_backends

    assert "ort-unoptimised" not in list_backends()  # this process never saw the file


def test_nothing_runs_up_the_floors_when_edgekd_is_imported():
    """docs/architecture.md's floors: no module-level import goes up a floor and none closes a circle
    (the lazy imports that still run against the floors are listed there, measured by this script)."""
    sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
    try:
        import import_graph
    finally:
        sys.path.pop(0)
    r = import_graph.report()
    print("\n".join(f"{u['from']} -> {u['to']} ({u['when']})" for u in r["upward"]))  # shown with pytest -s
    assert [u for u in r["upward"] if u["when"] == "top"] == []
    assert r["import_time_circles"] == []
    assert r["modules"] > 80 and r["imports"] > 200  # it read the package
