"""The five claims of docs/method.md §7 decided on an ``edgekd compare`` folder, with intervals (regime C).

    python benchmarks/claims/claims_c_verdicts.py WORK/grid --out benchmarks/claims/results/claims_cpu_c

For claims 1-4: the paired difference of δ1 over the seeds both cells have, its 95% CI, the paired t,
the minimum detectable difference (MDD, power 0.8) and a verdict from ``edgekd.report.stats.paired``:
"held" / "opposite" only when the interval excludes 0, else "not resolved".  Claim 5: the final
spectrum of the projector P and of P - P0 (what training added): energy in the top direction, the
number of singular values above 1% of the largest, and the effective rank, mean over seeds.
Also: the no-teacher student's train/val δ1 (does it overfit?) and each cell's auto weight.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edgekd.fileio import read_jsonl
from edgekd.report.plots import spectrum_summary
from edgekd.report.stats import paired

METRIC = "d1"


def by_seed(rows, cell_id, key=METRIC):
    return {r["seed"]: r["metrics"].get(key) for r in rows if r["id"] == cell_id}


def claim_rows(rows, ids):
    same = next((i for i in ids if i.startswith("teacher-depth")), None)
    checks = [
        ("1. dissimilar teacher: inverted > traditional", "random ViT-B/32", "random-fitnet-inverted", "random-fitnet-traditional", +1),
        ("1. dissimilar teacher: inverted > traditional", "ImageNet EfficientNet-Lite0", "efficientnet_lite0-fitnet-inverted",
         "efficientnet_lite0-fitnet-traditional", +1),
        ("2. same-task teacher: traditional >= inverted", "edgekd depth teacher", "teacher-depth-fitnet-traditional",
         "teacher-depth-fitnet-inverted", +1),
        ("3. random teacher + inverted > no teacher", "random ViT-B/32", "random-fitnet-inverted", "none", +1),
        ("4. spectral loss alone > no teacher", "r=2, fro, auto", "none-r2", "none", +1),
        ("(real dense teacher) inverted > no teacher", "PP-OCRv4 detector", "ppocr-det-fitnet-inverted", "none", +1),
        ("(real dense teacher) inverted > no teacher", "HED edges", "hed-fitnet-inverted", "none", +1),
        ("(real classifier) inverted > no teacher", "ImageNet EfficientNet-Lite0", "efficientnet_lite0-fitnet-inverted", "none", +1),
        ("(same-task teacher) inverted > no teacher", "edgekd depth teacher", "teacher-depth-fitnet-inverted", "none", +1),
        ("(same-task teacher) traditional > no teacher", "edgekd depth teacher", "teacher-depth-fitnet-traditional", "none", +1),
        ("(random teacher) traditional > no teacher", "random ViT-B/32", "random-fitnet-traditional", "none", +1),
    ]
    out = []
    for claim, what, a, b, _ in checks:
        if a not in ids or b not in ids:
            continue
        p = paired(by_seed(rows, a), by_seed(rows, b))
        verdict = p.verdict
        if verdict == "better":
            verdict = "**held**"
        elif verdict == "worse":
            verdict = "**opposite**"
        out.append({"claim": claim, "teacher": what, "cell": a, "reference": b, **p.to_dict(), "verdict_text": verdict})
    return out


def spectra(grid: Path, ids):
    res = {}
    for cid in ids:
        if "fitnet" not in cid:
            continue
        s1, sd = [], []
        for f in sorted((grid / "runs" / cid).glob("seed*/spectrum.jsonl")):
            last = read_jsonl(f)[-1]
            s1.append(spectrum_summary(last["singular_values"]))
            if "delta_singular_values" in last:
                sd.append(spectrum_summary(last["delta_singular_values"]))
        mean = lambda xs: {k: float(np.mean([x[k] for x in xs])) for k in xs[0]} if xs else {}  # noqa: E731
        res[cid] = {"P": mean(s1), "P_minus_P0": mean(sd), "seeds": len(s1)}
    return res


def fmt(x, d=4, sign=True):
    return "—" if x is None else (f"{x:+.{d}f}" if sign else f"{x:.{d}f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("grid")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    grid = Path(a.grid)
    from edgekd.report.compare import collect

    rows = collect(grid)
    ids = sorted({r["id"] for r in rows})
    claims = claim_rows(rows, ids)
    spec = spectra(grid, ids)
    gap = {}
    for cid in ids:
        cell = [r["metrics"] for r in rows if r["id"] == cid]
        w = []
        for r in rows:
            if r["id"] == cid:
                summ = json.loads((Path(r["run"]) / "summary.json").read_text())
                w.append(summ.get("loss_weights", {}))
        gap[cid] = {"n": len(cell), "val_d1": float(np.mean([m["d1"] for m in cell])), "val_d1_sd": float(np.std([m["d1"] for m in cell], ddof=1)) if len(cell) > 1 else None,
                    "train_d1": float(np.mean([m.get("train_d1", np.nan) for m in cell])),
                    "weights": {k: float(np.mean([x.get(k, 0) for x in w])) for k in ("distill", "spectral")}}
    lines = ["| claim | teacher | cell − reference | pairs | Δ δ1 | 95% CI | t | MDD | verdict |", "|---|---|---|---|---|---|---|---|---|"]
    for c in claims:
        ci = "—" if c["ci_low"] is None else f"[{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]"
        t = "—" if c["t"] is None else f"{c['t']:+.2f}"
        lines.append(f"| {c['claim']} | {c['teacher']} | {c['cell']} − {c['reference']} | {c['n']} | {fmt(c['mean'])} | {ci} | {t} | "
                     f"{fmt(c['mdd'], sign=False)} | {c['verdict_text']} |")
    lines += ["", "| cell | seeds | val δ1 (mean ± sd) | train δ1 | w distill | w spectral |", "|---|---|---|---|---|---|"]
    for cid, g in gap.items():
        sd = "" if g["val_d1_sd"] is None else f" ± {g['val_d1_sd']:.4f}"
        wd = f"{g['weights']['distill']:.3g}" if "fitnet" in cid else "—"
        ws = f"{g['weights']['spectral']:.3g}" if cid.endswith("-r2") else "—"
        lines.append(f"| {cid} | {g['n']} | {g['val_d1']:.4f}{sd} | {g['train_d1']:.4f} | {wd} | {ws} |")
    lines += ["", "| cell | seeds | P: top-1 energy / rank > 1% / eff. rank | P − P0: top-1 energy / rank > 1% / eff. rank |", "|---|---|---|---|"]
    for cid, s in spec.items():
        p, d = s["P"], s["P_minus_P0"]
        fp = lambda x: f"{x['energy_top1']:.3f} / {x['rank_above_1pct']:.0f} / {x['effective_rank']:.1f}" if x else "—"  # noqa: E731
        lines.append(f"| {cid} | {s['seeds']} | {fp(p)} | {fp(d)} |")
    text = "\n".join(lines)
    print(text)
    if a.out:
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "verdicts.md").write_text(text + "\n")
        (out / "verdicts.json").write_text(json.dumps({"claims": claims, "cells": gap, "spectra": spec}, indent=1))


if __name__ == "__main__":
    main()
