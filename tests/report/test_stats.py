"""Paired statistics over seeds (edgekd.report.stats) and the differences `edgekd compare` writes. Torch-free, no training."""

import csv
import json
import math

import pytest

from edgekd.report import compare
from edgekd.report.stats import betainc, mdd, needs_seeds, paired, t_cdf, t_quantile

# Student t quantiles from the printed tables (e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2), 3-4 decimals.
T_TABLE = {(0.975, 1): 12.706, (0.975, 2): 4.303, (0.975, 3): 3.182, (0.975, 4): 2.776, (0.975, 10): 2.228,
           (0.975, 30): 2.042, (0.975, 100): 1.984, (0.8, 3): 0.978, (0.8, 9): 0.883, (0.995, 5): 4.032, (0.9, 1): 3.078}


def test_t_quantile_matches_printed_tables():
    for (p, dof), q in T_TABLE.items():
        assert abs(t_quantile(p, dof) - q) < 1e-3, (p, dof)
        assert abs(t_quantile(1 - p, dof) + q) < 1e-3  # symmetric
        assert abs(t_cdf(t_quantile(p, dof), dof) - p) < 1e-9
    assert t_quantile(0.5, 7) == 0.0
    with pytest.raises(ValueError):
        t_quantile(1.0, 3)


def test_betainc_closed_forms():
    for x in (0.0, 0.1, 0.37, 0.5, 0.93, 1.0):
        assert abs(betainc(1, 1, x) - x) < 1e-12  # uniform
        assert abs(betainc(3, 1, x) - x ** 3) < 1e-12  # I_x(a, 1) = x^a
        assert abs(betainc(1, 2, x) - (1 - (1 - x) ** 2)) < 1e-12  # I_x(1, b) = 1 - (1-x)^b


def test_t_quantile_against_scipy():
    st = pytest.importorskip("scipy.stats", reason="scipy (a dev dependency) cross-checks the built-in t quantile")
    for dof in (1, 2, 3, 5, 8, 13, 29, 30, 31, 60, 199):
        for p in (0.6, 0.8, 0.9, 0.95, 0.975, 0.995, 0.9995):
            assert abs(t_quantile(p, dof) - st.t.ppf(p, dof)) < 1e-8, (p, dof)


# A known paired sample: differences d = cell - ref = 0.02, 0.03, 0.01, 0.04 (n = 4).
#   mean d̄ = 0.10 / 4 = 0.025
#   deviations -0.005, +0.005, -0.015, +0.015; squares sum to 0.0005; s_d = sqrt(0.0005 / 3) = 0.0129099
#   se = s_d / sqrt(4) = 0.00645497;  t = 0.025 / 0.00645497 = 3.87298
#   t_{0.975,3} = 3.182446 -> half-width 0.0205426 -> CI [0.0044574, 0.0455426]: excludes 0 -> better
#   MDD(4) = (t_{0.975,3} + t_{0.8,3}) * se = (3.182446 + 0.978472) * 0.00645497 = 0.0268587
CELL = {0: 0.80, 1: 0.82, 2: 0.81, 3: 0.84}
REF = {0: 0.78, 1: 0.79, 2: 0.80, 3: 0.80}


def test_known_paired_sample():
    p = paired(CELL, REF, higher_is_better=True)
    assert p.n == 4 and p.seeds == [0, 1, 2, 3] and p.unpaired == 0
    assert abs(p.mean - 0.025) < 1e-12
    assert abs(p.sd - 0.0129099) < 1e-6
    assert abs(p.t - 3.87298) < 1e-4
    assert abs(p.ci_low - 0.0044574) < 1e-6 and abs(p.ci_high - 0.0455426) < 1e-6
    assert abs(p.mdd - 0.0268587) < 1e-6
    assert p.verdict == "better"
    assert abs(p.rel - 0.025 / 0.7925) < 1e-12
    st = pytest.importorskip("scipy.stats")
    d = [CELL[s] - REF[s] for s in CELL]
    assert abs(st.ttest_rel(list(CELL.values()), list(REF.values())).statistic - p.t) < 1e-9
    lo, hi = st.t.interval(0.95, 3, loc=sum(d) / 4, scale=st.sem(d))
    assert abs(lo - p.ci_low) < 1e-9 and abs(hi - p.ci_high) < 1e-9


def test_mdd_monotone_and_needs_consistent():
    values = [mdd(1.0, n) for n in range(2, 60)]
    assert all(a > b for a, b in zip(values, values[1:]))
    assert math.isnan(mdd(1.0, 1))
    n = needs_seeds(1.0, 0.5)
    assert mdd(1.0, n) < 0.5 <= mdd(1.0, n - 1)
    assert needs_seeds(1.0, 0.0) is None
    assert needs_seeds(1.0, 0.01) == 201  # beyond the cap


def test_verdicts():
    ref = {s: 0.5 for s in range(5)}
    worse = paired({s: 0.45 + 0.001 * s for s in range(5)}, ref)
    assert worse.verdict == "worse" and worse.ci_high < 0
    # lower is better (e.g. AbsRel): a clear drop is "better"
    assert paired({s: 0.45 + 0.001 * s for s in range(5)}, ref, higher_is_better=False).verdict == "better"
    noisy = paired({0: 0.53, 1: 0.49, 2: 0.54, 3: 0.50, 4: 0.505}, ref)  # d = +.03 -.01 +.04 0 +.005: mean +0.013
    assert noisy.ci_low < 0 < noisy.ci_high
    assert noisy.mdd > abs(noisy.mean)  # unresolved implies the MDD at these seeds exceeds the difference
    assert noisy.needs > 5 and noisy.verdict == f"not resolved (needs ≈ {noisy.needs} seeds)"
    tiny = paired({0: 0.52, 1: 0.47, 2: 0.53, 3: 0.49, 4: 0.50}, ref)  # mean +0.002 against s_d 0.024
    assert tiny.verdict == "not resolved (needs > 200 seeds)"
    assert paired(ref, ref).verdict == "not resolved (no difference)"


def test_unpaired_seeds_excluded_and_one_seed():
    # the cell has a third seed the reference lacks (a restarted compare with more seeds): it must not count
    p = paired({0: 0.60, 1: 0.61, 2: 0.99}, {0: 0.50, 1: 0.52})
    assert p.n == 2 and p.seeds == [0, 1] and p.unpaired == 1
    assert abs(p.mean - 0.095) < 1e-12
    one = paired({0: 0.61, 1: 0.70}, {0: 0.50})
    assert one.n == 1 and one.verdict == "not resolved (1 seed)" and math.isnan(one.ci_low) and one.needs is None
    assert one.to_dict()["ci_low"] is None  # JSON-safe
    assert paired({0: 0.6}, {1: 0.5}).verdict == "not resolved (no paired seeds)"
    assert paired({0: float("nan"), 1: 0.6}, {0: 0.5, 1: 0.5}).n == 1  # a NaN metric is not a pair


def _row(cid, label, teacher, method, proj, seed, d1, train=None):
    metrics = {"d1": d1, "abs_rel": 0.2, "rmse": 1.0}
    if train is not None:
        metrics["train_d1"] = train
    return {"id": cid, "label": label, "teacher": teacher, "method": method, "projection": proj, "spectral": 0,
            "seed": seed, "metrics": metrics, "run": ""}


def _grid_rows(train=False):
    """none; teacher A: inverted clearly better, traditional best mean but noisy; teacher B: noisy best."""
    base = [0.60, 0.62, 0.61, 0.63]
    rows = []
    for s, b in enumerate(base):
        tr = (lambda v: v + 0.2) if train else (lambda v: None)
        rows.append(_row("none", "none", "none", None, None, s, b, tr(b)))
        rows.append(_row("a-fitnet-inverted", "a", "a", "fitnet", "inverted", s, b + 0.03 + 0.001 * s, tr(b)))
        rows.append(_row("a-fitnet-traditional", "a", "a", "fitnet", "traditional", s, b + (0.20, -0.12, 0.15, -0.08)[s], tr(b)))
        rows.append(_row("b-fitnet-inverted", "b", "b", "fitnet", "inverted", s, b + (0.05, -0.04, 0.03, -0.02)[s], tr(b)))
    rows.append(_row("b-fitnet-inverted", "b", "b", "fitnet", "inverted", 4, 0.99, None))  # a seed none lacks
    return rows


def test_differences_files_and_no_unresolved_bold(tmp_path):
    rows = _grid_rows()
    md_path, csv_path, json_path = compare.write_differences(tmp_path, rows, "depth")
    diffs = {(d["cell"], d["against"]): d for d in json.loads(json_path.read_text())["differences"]}
    assert set(diffs) == {("a-fitnet-inverted", "no teacher"), ("a-fitnet-inverted", "traditional"),
                          ("a-fitnet-traditional", "no teacher"), ("b-fitnet-inverted", "no teacher")}
    assert diffs["a-fitnet-inverted", "no teacher"]["verdict"] == "better"
    assert diffs["a-fitnet-traditional", "no teacher"]["verdict"].startswith("not resolved (needs")
    b = diffs["b-fitnet-inverted", "no teacher"]
    assert b["n"] == 4 and b["unpaired"] == 1 and abs(b["mean"] - 0.005) < 1e-12  # seed 4 (0.99) left out
    assert diffs["a-fitnet-inverted", "traditional"]["reference"] == "a-fitnet-traditional"
    md = md_path.read_text()
    assert "| a-fitnet-inverted | no teacher | 4 | +0.0315 |" in md and "MDD" in md and "4 (1 unpaired)" in md
    with open(csv_path) as f:
        recs = list(csv.DictReader(f))
    assert len(recs) == 4 and {"mean", "ci_low", "ci_high", "t", "mdd", "needs", "verdict"} <= set(recs[0])

    table_md, _ = compare.table(rows, "depth")
    # teacher a: the best mean is the noisy traditional cell (not resolved) -> nothing bold for a;
    # teacher b: its only cell is not resolved -> no bold at all
    assert "**" not in table_md
    # b's change over no teacher uses the 4 paired seeds only (+0.8%), not its 5-seed mean with seed 4's 0.99 (+12.8%)
    assert "(+0.8%, 4 paired)" in table_md and "12.8%" not in table_md and "train" not in table_md
    # drop the noisy cell: a's best is now the resolved inverted cell, and only it is bold
    clean = [r for r in rows if r["id"] != "a-fitnet-traditional"]
    table_md, _ = compare.table(clean, "depth")
    assert table_md.count("**") == 2 and "| fitnet | inverted | **0.647 ± 0.014" in table_md


def test_train_column_when_logged(tmp_path):
    table_md, table_csv = compare.table(_grid_rows(train=True), "depth")
    assert "(train d1)" in table_md and "(train 0.815 ± 0.013)" in table_md
    assert "train_d1_mean" in table_csv.splitlines()[0]


def _write_grid(out, rows, train=True):
    cells = {r["id"]: {k: r[k] for k in ("id", "label", "teacher", "method", "projection", "spectral")} for r in rows}
    (out).mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps({"config": {"model": {"task": "depth"}}, "cells": list(cells.values()),
                                                  "seeds": sorted({r["seed"] for r in rows})}))
    for r in rows:
        d = out / "runs" / r["id"] / f"seed{r['seed']}"
        d.mkdir(parents=True)
        val = {k: v for k, v in r["metrics"].items() if not k.startswith("train_")}
        (d / "summary.json").write_text(json.dumps({"final": val}))
        rec = {"epoch": 1, "train_loss": 0.3, **val, **({"train_d1": val["d1"] + 0.2} if train else {})}
        (d / "metrics.jsonl").write_text(json.dumps(rec) + "\n")
        if r["teacher"] != "none":
            (d / "spectrum.jsonl").write_text(json.dumps({"epoch": 1, "singular_values": [1.0, 0.5, 0.1]}) + "\n")


def test_collect_reads_train_metrics_and_report_page(tmp_path):
    pytest.importorskip("matplotlib")
    from edgekd.report.page import report_compare

    out = tmp_path / "cmp"
    _write_grid(out, _grid_rows())
    rows = compare.collect(out)
    assert all("train_d1" in r["metrics"] and "train_loss" not in r["metrics"] for r in rows)
    made = report_compare(out)
    assert (out / "report" / "forest.png").stat().st_size > 1000
    assert {"differences.md", "differences.csv", "differences.json", "forest.png"} <= {p.name for p in made}
    page = (out / "report" / "report.html").read_text()
    assert "<table" in page and "<pre>" not in page and "<td>a-fitnet-inverted</td>" in page and "forest.png" in page
    assert "(train 0.815" in (out / "table.md").read_text()


def test_quantised_ties_are_not_resolved():
    """δ1 on a small set is quantised (k / 32768 pixels): two seeds that each gain the same 13 pixels
    give sd 0 and a zero-width interval, which is no evidence of a difference (issue #26, finding 4)."""
    step = 13 / 32768
    ref = {0: 0.25 + 700 / 32768, 1: 0.25 + 900 / 32768}
    tie = paired({s: v + step for s, v in ref.items()}, ref)
    assert tie.mean == step and tie.sd == 0
    assert tie.verdict == "not resolved: no variance between seeds"
    assert tie.t is None or math.isnan(tie.t)
    assert math.isnan(tie.ci_low) and tie.needs is None and tie.to_dict()["ci_low"] is None
    # equal differences that float rounding makes differ in the last bits are no spread either
    ref3 = {0: 0.1, 1: 0.2, 2: 0.3}
    near = paired({s: v + step for s, v in ref3.items()}, ref3)
    assert near.verdict == "not resolved: no variance between seeds"
    # and nothing is bolded in the table for such a cell
    rows = []
    for s, v in ref.items():
        rows.append(_row("none", "none", "none", None, None, s, v))
        rows.append(_row("random-fitnet-inverted", "random", "random", "fitnet", "inverted", s, v + step))
    table_md, _ = compare.table(rows, "depth")
    assert "**" not in table_md
    diffs = compare.differences(rows, "depth")
    assert [d["verdict"] for d in diffs] == ["not resolved: no variance between seeds"]
