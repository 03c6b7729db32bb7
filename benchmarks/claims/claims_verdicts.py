"""The five claims of docs/method.md §7, checked on an ``edgekd compare`` directory.

    python benchmarks/claims/claims_verdicts.py runs/claims [--same-task teacher-depth] [--dissimilar random,mobilenetv2_100,teacher-classification]

For each claim: the two cells compared (mean ± std of δ1 over seeds), the difference, the
difference seed by seed with a paired t statistic (a seed fixes the student's initialisation and
the data order in every cell) and Welch's t; "holds" needs the claimed direction and a paired
|t| >= 2.92 (one-sided 95% with 3 seeds).  Claim 5 uses the
projector's final spectrum: energy in its top direction and effective rank, per teacher and projection.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edgekd.fileio import read_jsonl
from edgekd.report.plots import spectrum_summary

METRIC = "d1"


def cell(rows, **kw):
    return [r for r in rows if all(r.get(k) == v for k, v in kw.items())]


def stats(vals):
    v = np.asarray(vals, np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size)


def welch_t(a, b):
    (ma, sa, na), (mb, sb, nb) = stats(a), stats(b)
    se = np.sqrt(sa**2 / max(na, 1) + sb**2 / max(nb, 1))
    return (ma - mb) / se if se > 0 else float("inf") * np.sign(ma - mb)


def paired_t(a_rows, b_rows):
    """Same seed = same student initialisation and data order in every cell: compare seed by seed."""
    a = {r["seed"]: r["metrics"][METRIC] for r in a_rows}
    b = {r["seed"]: r["metrics"][METRIC] for r in b_rows}
    d = np.array([a[k] - b[k] for k in sorted(set(a) & set(b))])
    if d.size < 2 or d.std(ddof=1) == 0:
        return float("nan"), d
    return float(d.mean() / (d.std(ddof=1) / np.sqrt(d.size))), d


def compare(name, a_rows, b_rows, a_label, b_label, expect_greater=True):
    a = [r["metrics"][METRIC] for r in a_rows]
    b = [r["metrics"][METRIC] for r in b_rows]
    if not a or not b:
        return f"* **{name}**: not measured (missing cells)"
    (ma, sa, na), (mb, sb, nb) = stats(a), stats(b)
    diff = ma - mb
    ok = (diff > 0) == expect_greater
    if na < 2 or nb < 2:
        t = float("nan")
        verdict = "single seed: direction as claimed" if ok else "single seed: direction opposite to the claim"
    else:
        t = welch_t(a, b)
        tp, d = paired_t(a_rows, b_rows)
        # The verdict uses the paired test (seeds share the student's initialisation across cells).
        sig = abs(tp) >= 2.92 if d.size == 3 else abs(tp) >= 2  # one-sided 95% for 2 degrees of freedom
        verdict = "holds" if ok and sig else ("direction as claimed, not significant" if ok else
                                              ("does not hold (opposite, significant)" if sig else "does not hold (no significant difference)"))
        return (f"* **{name}**: {a_label} δ1 {ma:.4f} ± {sa:.4f} (n={na}) vs {b_label} {mb:.4f} ± {sb:.4f} (n={nb}); "
                f"difference {diff:+.4f}; per seed {', '.join(f'{x:+.4f}' for x in d)} (paired t = {tp:+.2f}; Welch t = {t:+.2f}) -> **{verdict}**")
    return (f"* **{name}**: {a_label} δ1 {ma:.4f} (n={na}) vs {b_label} {mb:.4f} (n={nb}); difference {diff:+.4f} -> **{verdict}**")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--same-task", default="teacher-depth")
    ap.add_argument("--dissimilar", default="random,mobilenetv2_100,teacher-classification")
    ap.add_argument("--spectral-cell", default="none-r2")
    a = ap.parse_args()
    rows = read_jsonl(Path(a.out) / "results.jsonl")
    lines = []
    for t in a.dissimilar.split(","):
        lines.append(compare(f"1. dissimilar teacher {t}: inverted > traditional", cell(rows, label=t, projection="inverted", spectral=0),
                             cell(rows, label=t, projection="traditional", spectral=0), "inverted", "traditional"))
    t = a.same_task
    lines.append(compare(f"2. same-task teacher {t}: traditional >= inverted", cell(rows, label=t, projection="traditional", spectral=0),
                         cell(rows, label=t, projection="inverted", spectral=0), "traditional", "inverted"))
    base = cell(rows, teacher="none", spectral=0)
    lines.append(compare("3. random teacher + inverted > no teacher", cell(rows, label="random", projection="inverted", spectral=0),
                         base, "random/inverted", "no teacher"))
    lines.append(compare("4. spectral loss alone > no teacher", cell(rows, id=a.spectral_cell), base, a.spectral_cell, "no teacher"))
    print("\n".join(lines))
    print("\n5. the projector's final spectrum (mean ± std over seeds):\n")
    print("| teacher | projection | energy in top direction | energy in top 8 | effective rank | rank above 1% |")
    print("|---|---|---|---|---|---|")
    groups = {}
    for r in rows:
        if r["teacher"] == "none" or r["spectral"]:
            continue
        sp = read_jsonl(Path(r["run"]) / "spectrum.jsonl") if Path(r["run"]).exists() else read_jsonl(
            Path(a.out) / "runs" / r["id"] / f"seed{r['seed']}" / "spectrum.jsonl")
        if sp:
            groups.setdefault((r["label"], r["projection"]), []).append(spectrum_summary(sp[-1]["singular_values"]))
    for (label, proj), ss in sorted(groups.items()):
        f = lambda k: "%.3f ± %.3f" % stats([s[k] for s in ss])[:2]  # noqa: E731
        g = lambda k: "%.1f ± %.1f" % stats([s[k] for s in ss])[:2]  # noqa: E731
        print(f"| {label} | {proj} | {f('energy_top1')} | {f('energy_top8')} | {g('effective_rank')} | {g('rank_above_1pct')} |")
    json.dump({"claims": lines}, open(Path(a.out) / "claims_verdicts.json", "w"), indent=2)


if __name__ == "__main__":
    main()
