"""edgekd's import graph against the floors docs/architecture.md states.

    python benchmarks/import_graph.py            # upward imports and circles, one line each
    python benchmarks/import_graph.py --json     # the same as JSON
    python benchmarks/import_graph.py --root ../other/edgekd   # another checkout's package

Reads the source (no module is imported): every ``import`` / ``from ... import`` inside ``edgekd/``,
at module level ("top") or inside a function ("lazy": imported when that code runs).  An import is
*upward* when it goes from a lower floor to a higher one; a *circle* is a set of modules (or of
packages) that import each other, through any chain, lazy imports included.
"""

from __future__ import annotations

import argparse
import ast
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "edgekd"

# Lowest first.  A module belongs to the floor of the longest prefix that names it (docs/architecture.md, "Floors").
FLOORS = [
    # run_lock: a run folder's one-writer lock (a file-system primitive beside fileio; the commands take it);
    # torch_stack: the torch/torchvision probe that the models' factory, the CLI and edgekd doctor call.
    ("base", ("edgekd", "edgekd.errors", "edgekd.registry", "edgekd.lazy", "edgekd.fileio", "edgekd.run_lock", "edgekd.torch_stack", "edgekd.options")),
    ("distill, data", ("edgekd.distill", "edgekd.data")),
    ("tasks", ("edgekd.tasks",)),
    ("config", ("edgekd.config",)),  # not in the stated order: the profile schema every later floor reads
    ("model card", ("edgekd.card",)),
    ("models", ("edgekd.models",)),
    ("bench", ("edgekd.bench",)),
    ("export", ("edgekd.export",)),
    ("train", ("edgekd.train",)),
    ("report", ("edgekd.report",)),
    # preflight checks a command's names and files before the work; doctor is `edgekd doctor`.
    ("commands", ("edgekd.commands", "edgekd.fit", "edgekd.preflight", "edgekd.doctor")),
    ("cli", ("edgekd.cli", "edgekd.__main__")),
]

def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def floor_of(module: str) -> int | None:
    """The floor index of ``module`` (None: on no floor yet, listed as unplaced)."""
    best, level = -1, None
    for i, (_, prefixes) in enumerate(FLOORS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best and not (p == "edgekd" and module != p):
                best, level = len(p), i
    return level


def runs_up(a: str, b: str) -> bool:
    fa, fb = floor_of(a), floor_of(b)
    return fa is not None and fb is not None and fb > fa


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(path: Path, modules: set[str]) -> list[tuple[str, str]]:
    """``(imported edgekd module, "top" | "lazy")`` for every import in ``path``."""
    me, is_package = module_name(path), path.name == "__init__.py"
    tree = ast.parse(path.read_text())
    lazy_nodes = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in ast.walk(f)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(me, is_package, node)
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        when = "lazy" if id(node) in lazy_nodes else "top"
        out += [(t, when) for t in targets if t.split(".")[0] == "edgekd" and t != me]
    return out


def graph() -> dict[str, list[tuple[str, str]]]:
    files = sorted(ROOT.rglob("*.py"))
    modules = {module_name(p) for p in files}
    edges = {}
    for p in files:
        known = []
        for target, when in imports(p, modules):
            while target not in modules and "." in target:  # `from pkg import function`: the module pkg
                target = target.rsplit(".", 1)[0]
            if target in modules and target != module_name(p):
                known.append((target, when))
        edges[module_name(p)] = sorted(set(known))
    return edges


def circles(nodes: list[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in nodes:
        if v not in index:
            visit(v)
    return sorted(out)


def package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def report() -> dict:
    g = graph()
    upward = [{"from": a, "to": b, "when": when, "floors": f"{FLOORS[floor_of(a)][0]} -> {FLOORS[floor_of(b)][0]}"}
              for a, targets in g.items() for b, when in targets if runs_up(a, b)]
    top_edges = {a: {b for b, when in t if when == "top"} for a, t in g.items()}
    module_edges = {a: {b for b, _ in t} for a, t in g.items()}
    package_edges: dict[str, set[str]] = {}
    for a, targets in module_edges.items():
        package_edges.setdefault(package(a), set()).update(package(b) for b in targets if package(b) != package(a))
    return {"modules": len(g), "imports": sum(len(t) for t in g.values()), "upward": upward,
            "module_circles": circles(sorted(g), module_edges),
            "package_circles": circles(sorted(package_edges), package_edges),
            "import_time_circles": circles(sorted(g), top_edges),
            "unplaced": sorted(m for m in g if floor_of(m) is None)}


def main():
    global ROOT
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print JSON instead of lines")
    ap.add_argument("--root", type=Path, default=ROOT, help="the edgekd package folder to read [this checkout's]")
    args = ap.parse_args()
    ROOT = args.root.resolve()
    r = report()
    if args.json:
        print(json.dumps(r, indent=2))
        return
    print(f"{r['modules']} modules, {r['imports']} edgekd imports")
    print(f"upward imports ({len(r['upward'])}):")
    for u in r["upward"]:
        print(f"  {u['from']} -> {u['to']} ({u['when']}; {u['floors']})")
    print(f"module circles ({len(r['module_circles'])}):")
    for c in r["module_circles"]:
        print("  " + " <-> ".join(c))
    print(f"package circles ({len(r['package_circles'])}):")
    for c in r["package_circles"]:
        print("  " + " <-> ".join(c))
    print(f"circles at import time, lazy imports left out ({len(r['import_time_circles'])}):")
    for c in r["import_time_circles"]:
        print("  " + " <-> ".join(c))
    if r["unplaced"]:
        print(f"on no floor yet (add them to FLOORS): {', '.join(r['unplaced'])}")


if __name__ == "__main__":
    main()
