"""One version source: edgekd/__init__.py's __version__; pyproject.toml reads it, everything else imports it."""

import ast
import re
from pathlib import Path

import tomllib

from conftest import run_cli

ROOT = Path(__file__).parents[2]


def _init_version() -> str:
    """The literal in edgekd/__init__.py, read as setuptools reads it (statically, without importing edgekd)."""
    tree = ast.parse((ROOT / "edgekd" / "__init__.py").read_text())
    return next(node.value.value for node in tree.body if isinstance(node, ast.Assign)
                and any(getattr(t, "id", None) == "__version__" for t in node.targets))


def test_pyproject_reads_the_version_from_the_package():
    proj = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in proj["project"] and "version" in proj["project"]["dynamic"]
    assert proj["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "edgekd.__version__"}


def test_one_version_everywhere():
    import edgekd

    assert edgekd.__version__ == _init_version() and re.fullmatch(r"\d+\.\d+\.\d+\S*", edgekd.__version__)
    assert run_cli(["--version"]).output.strip() == f"edgekd, version {edgekd.__version__}"
    written = [p for p in ROOT.glob("edgekd/**/*.py") if re.search(r"""version\w*\s*=\s*["']\d+\.\d+""", p.read_text())]
    assert written == [ROOT / "edgekd" / "__init__.py"], written
