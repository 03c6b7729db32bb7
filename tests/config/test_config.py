"""Profiles and targets: shipped files, overrides, one-line refusals."""

import ast
import re

import pytest

from edgekd.config import PROFILE_DIR, TARGET_DIR, list_profiles, load_profile, load_target, parse_override
from edgekd.errors import EdgekdError


def test_shipped_profiles_resolve():
    assert {"jetson", "mobile", "server"} <= set(list_profiles())
    for name in list_profiles():
        cfg = load_profile(name)
        assert cfg["target"]["name"] and cfg["profile"]["name"] == name
        assert len(cfg["data"]["image_size"]) == 2


def test_resources_live_inside_the_package():
    # Found from an installed wheel, not only from a checkout.
    assert PROFILE_DIR.parent.parent.name == "edgekd" and TARGET_DIR.exists()


def test_overrides_and_sets():
    cfg = load_profile("jetson", {"train": {"lr": 0.5, "epochs": None}}, ("distill.spectral=4", "model.student=\"resnet18\""))
    assert cfg["train"]["lr"] == 0.5 and cfg["distill"]["spectral"] == 4 and cfg["model"]["student"] == "resnet18"
    assert cfg["train"]["epochs"] == 25  # None means: keep the profile's


def test_user_profile_inherits_defaults(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text('target = "android-arm64"\n[train]\nepochs = 3\n')
    cfg = load_profile(str(p))
    assert cfg["train"]["epochs"] == 3 and cfg["train"]["batch_size"] == 16 and cfg["target"]["threads"] == 4


@pytest.mark.parametrize("text,match", [
    ('target = "jetson-orin-nano"\n[train]\nepochz = 3\n', "unknown key train.epochz"),
    ('target = "jetson-orin-nano"\n[trian]\nepochs = 3\n', r"unknown section \[trian\]"),
    ('target = "jetson-orin-nano"\n[train]\nepochs = "three"\n', "must be an integer"),
    ('target = "jetson-orin-nano"\n[train]\nlr = -1.0\n', "out of range"),
    ('target = "jetson-orin-nano"\n[distill]\nmethod = "kd"\n', "is not one of"),
    ('target = "jetson-orin-nano"\n[data]\nimage_size = [64]\n', "must have 2 entries"),
    ('[train\nepochs = 3\n', "not valid TOML"),
    ('[train]\nepochs = 3\n', "names no target"),
    ('target = "toaster"\n', "unknown target"),
])
def test_bad_profiles(tmp_path, text, match):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(EdgekdError, match=match):
        load_profile(str(p))


def test_bad_override():
    with pytest.raises(EdgekdError, match="section.key=value"):
        parse_override("lr")
    with pytest.raises(EdgekdError, match="unknown key"):
        parse_override("train.lrr=1")


def test_every_mistake_of_a_file_at_once(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('target = "toaster"\ncolour = 1\n[train]\nepochz = 3\nlr = -1.0\n[trian]\na = 1\n[distill]\nmethod = "kd"\n')
    with pytest.raises(EdgekdError) as e:
        load_profile(str(p))
    lines = str(e.value).splitlines()
    for i, want in enumerate(["unknown top-level key 'colour'", "unknown key train.epochz", "train.lr = -1.0 is out of range",
                              r"unknown section [trian]", "distill.method = 'kd' is not one of", "unknown target 'toaster'"]):
        assert want in lines[i], (want, lines)
    assert len(lines) == 6
    t = tmp_path / "t.toml"
    t.write_text('threads = 0\nram = 4\narch = "mips"\n')
    with pytest.raises(EdgekdError) as e:
        load_target(str(t))
    assert len(str(e.value).splitlines()) == 3


def test_every_mistake_on_the_command_line_one_error_line_each():
    from conftest import run_cli

    res = run_cli(["distill", "--lr", "100", "--epochs", "0", "--set", "train.workers=-1", "--set", "train.x=1"], expect=2)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 4 and all(line.startswith("error: ") for line in lines), lines
    assert "--set train.workers = -1 is out of range" in lines[0] and "--lr = 100.0 is out of range" in res.stderr


def test_schema_gives_defaults_help_and_options():
    from edgekd.config import SECTIONS, default_config, key_help, option_keys, option_name, option_overrides, section_keys

    cfg = default_config()
    assert list(cfg) == list(SECTIONS) and cfg["train"]["epochs"] == 25 and cfg["data"]["image_size"] == [256, 320]
    assert default_config()["data"]["image_size"] is not cfg["data"]["image_size"]  # a fresh dict each time
    for section in ("", *SECTIONS):
        for key in section_keys(section):
            assert key_help(section, key).strip(), f"{section}.{key} has no help"
    assert option_name("distill", "weight") == "--distill-weight" and option_name("train", "augment") == "--augment"
    flags = {flag for *_, flag, _ in option_keys()}
    assert {"--task", "--compile", "--distill-weight", "--image-size", "--save-every-min"} <= flags
    over = option_overrides({"compile_mode": "graph", "distill_weight": 0.5, "image_size": (64, 96), "epochs": None})
    assert over["model"]["compile"] == "graph" and over["distill"]["weight"] == 0.5 and over["data"]["image_size"] == [64, 96]
    assert over["train"]["epochs"] is None


def test_every_option_of_the_schema_is_on_the_command_line():
    from conftest import run_cli
    from edgekd.cli import cli
    from edgekd.config import option_keys

    declared = {o for p in cli.commands["distill"].params for o in (*p.opts, *p.secondary_opts)}
    missing = [flag for *_, flag, _ in option_keys() if flag not in declared]  # exact flags: --data is not --data-format
    assert not missing, f"options of the schema that edgekd distill does not take: {missing}"
    shown = set(re.findall(r"(?<![\w-])--[a-z0-9][a-z0-9-]*", run_cli(["distill", "--help"]).output))
    assert {flag for *_, flag, _ in option_keys()} <= shown


def test_registry_choices_are_read_when_checked():
    import edgekd.commands  # noqa: F401  (what every command imports: the later floors register their word lists)
    from edgekd.bench.runners.base import list_backends
    from edgekd.config import key_choices
    from edgekd.export.formats import list_formats
    from edgekd.tasks import list_tasks

    assert key_choices("model", "task") == tuple(list_tasks())
    assert key_choices("bench", "backend") == ("auto", *list_backends(aliases=True))
    assert "fitnet" in key_choices("distill", "method") and "inverted" in key_choices("distill", "projection")
    assert key_choices("export", "format") == tuple(list_formats(aliases=True))


@pytest.mark.parametrize("section,key,word", [("bench", "backend", "ort-gpu"), ("export", "format", "coreml"),
                                              ("export", "precision", "int4")])
def test_a_later_floors_word_is_checked_as_the_profile_loads(tmp_path, section, key, word):
    """bench.backend and export.format/precision take words that bench and export register with the schema
    (config.register_key_words): a profile naming another is refused at load, with the registry's list."""
    import edgekd.commands  # noqa: F401
    from edgekd.config import key_choices

    p = tmp_path / "bad.toml"
    p.write_text(f'target = "jetson-orin-nano"\n[{section}]\n{key} = "{word}"\n')
    with pytest.raises(EdgekdError, match=f"{section}.{key} = '{word}' is not one of: " + ", ".join(key_choices(section, key))):
        load_profile(str(p))


def test_config_imports_no_later_floor():
    """config.py reads no registry above it: in a fresh interpreter it imports neither bench, export nor models,
    and a profile it loads alone leaves those keys to their owners (checked where the value is used)."""
    import subprocess
    import sys

    code = ("import sys; from edgekd.config import load_profile; cfg = load_profile('jetson'); "
            "print(sorted(m for m in sys.modules if m.startswith(('edgekd.bench', 'edgekd.export', 'edgekd.models'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("name", list_profiles())
def test_resolved_config_dumps_to_toml_and_back(tmp_path, name):
    from edgekd.config import SECTIONS, to_toml

    cfg = load_profile(name, {"train": {"lr": 3e-4}}, ("distill.spectral=2",))
    p = tmp_path / "again.toml"
    p.write_text(to_toml(cfg))
    again = load_profile(str(p))
    assert {s: again[s] for s in SECTIONS} == {s: cfg[s] for s in SECTIONS} and again["target"] == cfg["target"]


# Keys no code reads yet, with the reason (issue #12: every key is read somewhere or removed).
UNREAD: dict = {}  # (section, key) -> why; an entry that is read after all fails the test


def _literal(node):
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _index(node):
    """``(obj, "key")`` for ``obj.key`` (a RunConfig's section or key), ``obj["key"]`` and
    ``obj.get/setdefault/pop("key", ...)`` (a config dict), else None."""
    if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load):
        return node.value, node.attr
    if isinstance(node, ast.Subscript) and _literal(node.slice):
        return node.value, _literal(node.slice)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("get", "setdefault", "pop")
            and node.args and _literal(node.args[0])):
        return node.func.value, _literal(node.args[0])
    return None


def _name(node):
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None


def section_reads(trees, sections) -> set:
    """``(section, key)`` read as ``cfg.section.key`` or ``cfg["section"]["key"]``, or through a name bound to a
    section (``tc = cfg.train``, ``tc = cfg["train"]``, ``bc = cfg.get("bench") or {}``, or a parameter named after
    the section)."""
    def section_of(node):
        node = node.values[0] if isinstance(node, ast.BoolOp) else node
        i = _index(node)
        return i[1] if i and i[1] in sections else None

    aliases = {s: {s} for s in sections}
    for tree in trees:
        for n in ast.walk(tree):
            if isinstance(n, ast.Assign) and section_of(n.value):
                for target in n.targets:
                    aliases.setdefault(_name(target), set()).add(section_of(n.value))
    reads = set()
    for tree in trees:
        for n in ast.walk(tree):
            i = _index(n)
            if i:
                direct = section_of(i[0])
                reads |= {(s, i[1]) for s in ({direct} if direct else aliases.get(_name(i[0]), ()))}
    return reads


def test_every_profile_key_is_read_somewhere():
    from pathlib import Path

    from edgekd.config import SECTIONS, section_keys

    root = Path(__file__).parents[2] / "edgekd"
    trees = [ast.parse(p.read_text()) for p in root.rglob("*.py") if p.name != "config.py"]
    trees += [n for n in ast.parse((root / "config.py").read_text()).body if isinstance(n, ast.FunctionDef)]  # not the schema
    reads = section_reads(trees, SECTIONS)
    unread = [(s, k) for s in SECTIONS for k in section_keys(s) if (s, k) not in UNREAD and (s, k) not in reads]
    assert not unread, f"no code reads {unread}: read them or remove them from the schema"
    assert not [k for k in UNREAD if k in reads], "a key listed in UNREAD is read now: remove it from UNREAD"
