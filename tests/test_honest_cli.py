"""What the CLI and README say is what they do (issue #26, finding 6): help shows every default, the README
names only options the verb has, teacher kinds lists none, fit gives budget verdicts only on target."""

import json
import re
from pathlib import Path

import click
import pytest

from conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
OTHER_TOOLS = {"--help", "--index-url", "--no-deps", "--nproc-per-node"}  # pip's and torchrun's


def _options(cmd) -> set:
    found = set()
    for p in cmd.params:
        found.update(o for o in p.opts + p.secondary_opts if o.startswith("--"))
    if isinstance(cmd, click.Group):
        for c in cmd.commands.values():
            found |= _options(c)
    return found


def test_readme_names_only_options_the_verb_has():
    from edgekd.cli import cli

    every = _options(cli) | OTHER_TOOLS
    text = (ROOT / "README.md").read_text()
    for para in re.split(r"\n(?=\* )|\n\s*\n", text):
        used = set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", para))
        verb = re.match(r"\s*\*?\s*`edgekd ([a-z]+)", para)
        allowed = (_options(cli.commands[verb[1]]) | OTHER_TOOLS) if verb and verb[1] in cli.commands else every
        assert used <= allowed, (sorted(used - allowed), para[:120])


def test_every_distill_option_shows_its_default():
    res = run_cli(["distill", "--help"])
    entries = re.split(r"\n  (?=-)", res.output.split("Options:")[1])
    missing = [" ".join(e.split())[:60] for e in entries if e.strip() and "[" not in e and not e.strip().startswith("-h, --help")]
    assert not missing, missing
    assert "[the profile's: ]" not in res.output  # an empty default reads "none"


def test_teacher_kinds_lists_none():
    out = run_cli(["teacher", "kinds"]).output
    assert re.search(r"^none\s", out, re.M)


@pytest.mark.skipif(__import__("platform").machine().lower() in ("aarch64", "arm64"), reason="this machine is an ARM CPU like the mobile target")
def test_fit_gives_no_budget_verdict_off_target(tmp_path):
    out = tmp_path / "fit"
    res = run_cli(["fit", "--profile", "mobile", "--min-time", "0.05", "--out", out, "--candidates", "mobilenetv2_050@64x64@fp32",
                   "--write-profile", tmp_path / "mine.toml"])
    r = json.loads((out / "fit.json").read_text())
    assert r["on_target"] is False and "android-arm64" in r["why_no_verdict"]
    assert r["candidates"][0]["fits"] is None and "not on target: no budget verdict" in res.output
    assert r["environment"]["cores"] and r["environment"]["arch"] and r["environment"]["backend"] == "ort-cpu"
    prof = (tmp_path / "mine.toml").read_text()
    assert "budget is unchecked" in prof and "budget 50 ms on android-arm64" not in prof
