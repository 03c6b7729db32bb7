"""``edgekd compare``'s results: the paper's experiment (Table 1), with seeds and error bars.

The grid (teacher x method x projection x spectral rank, several seeds each) is
trained by :mod:`edgekd.train.grid`; this module reads the finished runs.
Results go to ``results.jsonl`` (one line per run) and the tables
to ``table.md`` / ``table.csv``: mean +- std over seeds, the change in % over
the no-teacher baseline (on the seeds both have), the best cell per teacher in
bold only when it is resolved better than no teacher.  ``differences.md`` /
``.csv`` / ``.json`` decide each cell against its reference (no teacher; and,
for an inverted cell, the traditional projection with the same teacher, method
and rank): paired difference over seeds, 95% interval, t, minimum detectable
difference and a verdict (see :mod:`edgekd.report.stats`).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from ..errors import EdgekdError
from ..fileio import atomic_write_json, atomic_write_text, read_jsonl
from ..tasks import create_task
from .stats import paired


def table_metrics(task: str) -> tuple[str, ...]:
    """The metrics the table shows for ``task`` (its primary one first), as the task states them."""
    return tuple(create_task(task).table_metrics)


def collect(out: Path) -> list[dict]:
    """Results of every finished run under ``out/runs`` (final-epoch validation metrics)."""
    meta = json.loads((out / "compare.json").read_text())
    rows = []
    for cell in meta["cells"]:
        for seed in meta["seeds"]:
            run_dir = out / "runs" / cell["id"] / f"seed{seed}"
            if not (run_dir / "summary.json").exists():
                continue
            final = json.loads((run_dir / "summary.json").read_text())["final"]
            final = {**_train_metrics(run_dir, final), **final}
            rows.append({**{k: cell[k] for k in ("id", "label", "teacher", "method", "projection", "spectral")},
                         "seed": seed, "metrics": final, "run": str(run_dir)})
    atomic_write_text(out / "results.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    return rows


def _train_metrics(run_dir: Path, final: dict) -> dict:
    """``train_<metric>`` of the last epoch (the task metric on a fixed subset of the training scenes), where logged."""
    try:
        last = read_jsonl(run_dir / "metrics.jsonl")[-1]
    except (OSError, IndexError, ValueError):
        return {}
    return {f"train_{k}": last[f"train_{k}"] for k in final if isinstance(last.get(f"train_{k}"), (int, float))}


def summarise(rows: list[dict], task: str) -> dict:
    """{cell id: {metric: (mean, std, n)}} and the row/column layout of the table."""
    by_cell: dict[str, list[dict]] = {}
    info = {}
    for r in rows:
        by_cell.setdefault(r["id"], []).append(r["metrics"])
        info[r["id"]] = r
    stats = {}
    for cid, ms in by_cell.items():
        stats[cid] = {}
        for k in ms[0]:
            vals = np.array([m[k] for m in ms if isinstance(m.get(k), (int, float))], np.float64)
            if vals.size:
                stats[cid][k] = (float(vals.mean()), float(vals.std(ddof=1)) if vals.size > 1 else 0.0, int(vals.size))
    return {"stats": stats, "info": info, "metrics": table_metrics(task)}


def _fmt(mean, std, k):
    p = 3 if k not in ("psnr",) else 2
    return f"{mean:.{p}f} ± {std:.{p}f}"


def primary_metric(task: str) -> tuple[str, bool]:
    """The task's primary table metric and whether higher is better."""
    t = create_task(task)
    return t.primary_metric, not t.lower_is_better(t.primary_metric)


def references(info: dict) -> list[tuple[str, str, str]]:
    """(cell, reference cell, what the reference is): every cell against the plain student (no teacher, no
    spectral term); an inverted cell also against the traditional one with the same teacher, method and rank."""
    base = next((c for c, i in info.items() if i["teacher"] == "none" and not i["spectral"]), None)
    pairs = []
    for c, i in info.items():
        if base and c != base:
            pairs.append((c, base, "no teacher"))
        if i["projection"] == "inverted":
            key = (i["label"], i["method"], i["spectral"])
            trad = next((t for t, j in info.items() if j["projection"] == "traditional" and (j["label"], j["method"], j["spectral"]) == key), None)
            if trad:
                pairs.append((c, trad, "traditional"))
    return pairs


def differences(rows: list[dict], task: str) -> list[dict]:
    """Each cell against its references on the primary metric, paired over the seeds both have."""
    primary, higher = primary_metric(task)
    values: dict[str, dict] = {}
    info = {}
    for r in rows:
        info[r["id"]] = r
        if primary in r["metrics"]:
            values.setdefault(r["id"], {})[r["seed"]] = r["metrics"][primary]
    out = []
    for c, ref, kind in references(info):
        p = paired(values.get(c, {}), values.get(ref, {}), higher)
        out.append({"cell": c, "reference": ref, "against": kind, "metric": primary, "higher_is_better": higher, **p.to_dict()})
    return out


def _num(x, p=4, sign=False):
    if x is None:
        return "—"
    fmt = "e" if 0 < abs(x) < 10 ** -(p - 1) else "f"  # a 1e-6 difference must not read as 0.0000
    return f"{x:{'+' if sign else ''}.{p if fmt == 'f' else 1}{fmt}}"


def differences_table(diffs: list[dict], task: str) -> tuple[str, str]:
    """Markdown and CSV of :func:`differences`."""
    primary, higher = primary_metric(task)
    md = [f"Paired differences of {primary} ({'higher' if higher else 'lower'} is better) over the seeds both cells have: "
          "cell − reference, its 95% confidence interval (Student t), the paired t, and the minimum detectable difference "
          "(MDD: the smallest true difference these seeds would detect 80% of the time at α = 0.05). "
          "Verdict: better / worse when the interval excludes 0; otherwise *not resolved*: not detected with these seeds, "
          "which is not the same as no effect; “needs ≈ N seeds” is the seed count at which the MDD, at the observed spread, "
          "falls below the observed difference.", "",
          f"| cell | against | pairs | Δ {primary} | Δ % | 95% CI | t | MDD | verdict |", "|---|---|---|---|---|---|---|---|---|"]
    for d in diffs:
        pairs = f"{d['n']}" + (f" ({d['unpaired']} unpaired)" if d["unpaired"] else "")
        ci = f"[{_num(d['ci_low'], sign=True)}, {_num(d['ci_high'], sign=True)}]" if d["ci_low"] is not None else "—"
        rel = "—" if d["rel"] is None else f"{d['rel'] * 100:+.1f}%"
        t = "—" if d["t"] is None else f"{d['t']:+.2f}"
        md.append(f"| {d['cell']} | {d['against']} | {pairs} | {_num(d['mean'], sign=True)} | {rel} | {ci} | {t} | {_num(d['mdd'])} | {d['verdict']} |")
    buf = io.StringIO()
    cols = ["cell", "reference", "against", "metric", "n", "unpaired", "mean", "rel", "ci_low", "ci_high", "t", "sd", "mdd", "needs", "verdict"]
    w = csv.writer(buf)
    w.writerow(cols)
    for d in diffs:
        w.writerow(["" if d[k] is None else d[k] for k in cols])
    return "\n".join(md) + "\n", buf.getvalue()


def write_differences(out: Path, rows: list[dict], task: str) -> tuple[Path, Path, Path]:
    """OUT/differences.md, .csv and .json."""
    diffs = differences(rows, task)
    md, csv_text = differences_table(diffs, task)
    return (atomic_write_text(out / "differences.md", md), atomic_write_text(out / "differences.csv", csv_text),
            atomic_write_json(out / "differences.json", {"task": task, "differences": diffs}))


def _resolved_best(stats, info, teachers, primary, higher, vs_base) -> set:
    """The best cell per teacher (on the primary metric's mean), kept only when resolved better than no teacher:
    a mean that noise could have produced is no winner."""
    best = set()
    for t in teachers:
        cands = [(stats[c][primary][0], c) for c, i in info.items() if i["label"] == t and primary in stats[c]]
        if cands:
            b = (max if higher else min)(cands)[1]
            if vs_base.get(b, {}).get("verdict") == "better":
                best.add(b)
    return best


def table(rows: list[dict], task: str) -> tuple[str, str]:
    """Markdown and CSV tables like the paper's Table 1 (rows: method/projection; columns: teachers)."""
    s = summarise(rows, task)
    stats, info, metrics = s["stats"], s["info"], s["metrics"]
    if not stats:
        raise EdgekdError("no finished runs to tabulate yet; run edgekd compare first")
    primary, higher = primary_metric(task)
    train_key = f"train_{primary}"
    has_train = any(train_key in st for st in stats.values())
    vs_base = {d["cell"]: d for d in differences(rows, task) if d["against"] == "no teacher"}
    teachers = list(dict.fromkeys(i["label"] for i in info.values() if i["teacher"] != "none"))
    row_keys = list(dict.fromkeys((i["method"], i["projection"], i["spectral"]) for i in info.values() if i["teacher"] != "none"))
    best = _resolved_best(stats, info, teachers, primary, higher, vs_base)

    def cell_text(cid, md=True):
        st = stats.get(cid, {})
        if primary not in st:
            return "-"
        parts = [_fmt(*st[k][:2], k) for k in metrics if k in st]
        if train_key in st:  # next to val: the gap says whether the student overfits
            parts[0] += f" (train {_fmt(*st[train_key][:2], primary)})"
        text = " / ".join(parts)
        d = vs_base.get(cid)
        if d and d["rel"] is not None:  # on the paired seeds only: a 1-seed cell is not set against a 3-seed mean
            text += f" ({d['rel'] * 100:+.1f}%" + (f", {d['n']} paired" if d["n"] != st[primary][2] else "") + ")"
        if md and cid in best:
            text = f"**{text}**"
        n = st[primary][2]
        return text + (f" n={n}" if n < 2 else "")

    header = " / ".join((f"{k} (train {k})" if k == primary and has_train else k) for k in metrics)
    md = [f"Metrics per cell: {header} (mean ± std over seeds; in brackets the change of {primary} over no teacher on the "
          "seeds both have; best per teacher in bold only where resolved better than no teacher, see differences.md).", ""]
    none_rows = [(c, i) for c, i in info.items() if i["teacher"] == "none"]
    for c, i in sorted(none_rows, key=lambda x: x[1]["spectral"]):
        name = "no teacher" if not i["spectral"] else f"no teacher + spectral r={i['spectral']}"
        md.append(f"* {name}: {cell_text(c)}")
    md += ["", "| method | projection | " + " | ".join(teachers) + " |", "|---|---|" + "---|" * len(teachers)]
    for method, proj, r in row_keys:
        cells = []
        for t in teachers:
            cid = next((c for c, i in info.items() if i["label"] == t and (i["method"], i["projection"], i["spectral"]) == (method, proj, r)), None)
            cells.append(cell_text(cid) if cid else "-")
        md.append(f"| {method}{f' + spectral {r}' if r else ''} | {proj} | " + " | ".join(cells) + " |")
    return "\n".join(md) + "\n", _table_csv(stats, info, list(metrics) + ([train_key] if has_train else []), primary)


def _table_csv(stats: dict, info: dict, metrics: list[str], primary: str) -> str:
    """One CSV row per cell: its teacher, method, projection, rank, seed count, and mean and std of each metric."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["teacher", "method", "projection", "spectral", "seeds"] + [f"{k}_{s}" for k in metrics for s in ("mean", "std")])
    for c, i in info.items():
        st = stats[c]
        w.writerow([i["label"], i["method"] or "", i["projection"] or "", i["spectral"], st[primary][2] if primary in st else 0]
                   + [x for k in metrics for x in (st.get(k, (None, None))[:2])])
    return buf.getvalue()


def write_tables(out: Path, rows: list[dict], task: str) -> tuple[Path, Path]:
    md, csv_text = table(rows, task)
    return atomic_write_text(out / "table.md", md), atomic_write_text(out / "table.csv", csv_text)
