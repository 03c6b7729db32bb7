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

ARCHITECTURE = Path(__file__).parents[2] / "docs" / "architecture.md"


def recipe(title: str) -> list[str]:
    """The python blocks of the section ``## <title>`` of docs/architecture.md, dedented."""
    text = ARCHITECTURE.read_text().split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    return [textwrap.dedent(b) for b in re.findall(r"^ *```python\n(.*?)^ *```", text, flags=re.S | re.M)]


def _run(code: str, *args, cwd=None):
    """``python -c code args`` with this interpreter and this test's import path."""
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})


@pytest.fixture
def cosine_distance(tmp_path, monkeypatch):
    """docs' distance recipe: its file in the distill package, its line run as distill/registry.py would run it."""
    import edgekd.distill as distill

    module, line = recipe("How to add a distance (one file + one line)")
    (tmp_path / "cosine.py").write_text(module)
    monkeypatch.setattr(distill, "__path__", [*distill.__path__, str(tmp_path)])  # edgekd.distill.cosine is that file
    monkeypatch.setitem(registry._DISTANCES, "cosine", registry._DISTANCES["fitnet"])  # restored after the test
    exec(line, vars(registry))
    yield "cosine"
    sys.modules.pop("edgekd.distill.cosine", None)


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


# --- the task, backend and profile-key recipes, taken from docs/architecture.md itself ---------------------------------


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


# The schema with the recipe's field in it, as this process's edgekd.config (a subprocess: nothing leaks).
WITH_KEY = """
import sys, types
from pathlib import Path
import edgekd

path = Path(edgekd.__file__).parent / "config.py"
src, field = path.read_text(), sys.argv.pop(1)
end = src.index("\\n\\n\\n", src.index("class TrainConfig"))  # the last line of [train]'s fields
config = types.ModuleType("edgekd.config")
config.__file__, config.__package__ = str(path), "edgekd"
sys.modules["edgekd.config"] = edgekd.config = config
exec(compile(src[:end] + "\\n    " + field.strip() + src[end:], str(path), "exec"), vars(config))
"""


def test_the_profile_key_recipe_is_a_key_everywhere(tmp_path):
    import ast

    import test_config

    from edgekd.config import SECTIONS

    field, read = recipe("How to add a profile key (one field + its read)")
    check = WITH_KEY + """
from edgekd.config import load_profile
from edgekd.errors import EdgekdError
assert load_profile("jetson")["train"]["grad_clip"] == 0.0
assert load_profile("jetson", sets=("train.grad_clip=1.5",))["train"]["grad_clip"] == 1.5
try:
    load_profile("jetson", sets=("train.grad_clip=-1",))
except EdgekdError as e:
    print("refused:", len(str(e).splitlines()), e)
"""
    res = _run(check, field)
    assert res.returncode == 0, res.stderr[-2000:]
    refused = [ln for ln in res.stdout.splitlines() if ln.startswith("refused:")]
    assert len(refused) == 1 and refused[0].startswith("refused: 1 ") and "grad_clip" in refused[0]  # one line
    assert "unknown key" not in refused[0]  # refused for its range: the schema has the key
    cli = WITH_KEY + "from edgekd.cli import main; sys.argv[0] = 'edgekd'; main()"
    bad = _run(cli, field, "distill", "--set", "train.grad_clip=-1", "--out", tmp_path / "run")  # refused before any work
    errors = [ln for ln in (bad.stdout + bad.stderr).splitlines() if ln.startswith("error:")]
    assert bad.returncode == 2 and len(errors) == 1 and "grad_clip" in errors[0] and "unknown key" not in errors[0], bad.stderr[-2000:]
    # Step 2 is the read test_config's check looks for; the package itself does not read the key.
    assert ("train", "grad_clip") in test_config.section_reads([ast.parse(read)], SECTIONS)
    package = [ast.parse(p.read_text()) for p in (Path(__file__).parents[2] / "edgekd").rglob("*.py")]
    assert ("train", "grad_clip") not in test_config.section_reads(package, SECTIONS)


# The floors, lowest first, as docs/architecture.md states them (benchmarks/import_graph.py's FLOORS names them
# module by module; config.py is measured on its own floor above tasks, outside the stated order).
STATED_FLOORS = ["base", "distill, data", "tasks", "model card", "models", "bench", "export", "train", "report", "commands", "cli"]

# Known exceptions: none.  Empty since issue 23: config.py's choices for bench.backend, export.format/precision and the teacher help are
# registered from above (config.register_key_words), so nothing runs up the floors and no circle is left.
KNOWN_UPWARD: set = set()
KNOWN_CIRCLES: list = []


def _import_graph():
    sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
    try:
        import import_graph
    finally:
        sys.path.pop(0)
    return import_graph


def test_nothing_runs_up_the_floors():
    """No import goes up a floor, lazy ones included, and no modules or packages import each other in a circle
    (docs/architecture.md, "Floors"; measured from the source by benchmarks/import_graph.py)."""
    g = _import_graph()
    assert [name for name, _ in g.FLOORS if name != "config"] == STATED_FLOORS
    assert " → ".join(STATED_FLOORS[1:]) in ARCHITECTURE.read_text().replace("\n", " ")  # the page states the same order
    r = g.report()
    assert r["unplaced"] == []  # every module is on a floor
    upward = {(u["from"], u["to"]) for u in r["upward"]}
    assert upward - KNOWN_UPWARD == set(), "imports up the floors: " + ", ".join(f"{a} -> {b}" for a, b in sorted(upward - KNOWN_UPWARD))
    assert r["module_circles"] == []
    assert [c for c in r["package_circles"] if c not in KNOWN_CIRCLES] == []
    assert r["modules"] > 80 and r["imports"] > 200  # it read the package


def test_the_floor_check_sees_an_upward_import_and_a_circle(tmp_path, monkeypatch):
    """The check itself: a lazy import from bench up to export, and two modules importing each other, are found."""
    g = _import_graph()
    pkg = tmp_path / "edgekd"
    for name, text in {"__init__.py": "", "bench/__init__.py": "", "export/__init__.py": "",
                       "bench/a.py": "def f():\n    from ..export import b\n", "export/b.py": "from ..bench import a\n"}.items():
        (pkg / name).parent.mkdir(parents=True, exist_ok=True)
        (pkg / name).write_text(text)
    monkeypatch.setattr(g, "ROOT", pkg)
    r = g.report()
    assert [(u["from"], u["to"], u["when"]) for u in r["upward"]] == [("edgekd.bench.a", "edgekd.export.b", "lazy")]
    assert r["module_circles"] == [["edgekd.bench.a", "edgekd.export.b"]]
    assert r["package_circles"] == [["edgekd.bench", "edgekd.export"]]


def test_nothing_runs_up_the_floors_when_edgekd_is_imported():
    """docs/architecture.md's floors: no module-level import goes up a floor and none closes a circle
    (the lazy imports that still run against the floors are listed there, measured by this script)."""
    r = _import_graph().report()
    print("\n".join(f"{u['from']} -> {u['to']} ({u['when']})" for u in r["upward"]))  # shown with pytest -s
    assert [u for u in r["upward"] if u["when"] == "top"] == []
    assert r["import_time_circles"] == []
    assert r["modules"] > 80 and r["imports"] > 200  # it read the package
