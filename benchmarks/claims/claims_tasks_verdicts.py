"""The paper's claims 1, 3, 4 and 5 decided on one task's regime-C grid (segmentation or colourisation), with intervals.

    python benchmarks/claims/claims_tasks_verdicts.py WORK/segmentation --task segmentation --edgekd /work/frozen \
        --out benchmarks/claims/results/claims_cpu_seg
    python benchmarks/claims/claims_tasks_verdicts.py --holm benchmarks/claims/results/claims_cpu_seg benchmarks/claims/results/claims_cpu_colour \
        --out benchmarks/claims/results/claims_tasks_holm

WORK/TASK holds ``pilot/`` (held-out seed 100) and ``grid/`` (one ``edgekd compare`` folder), as
benchmarks/claims/claims_tasks.sh writes them.  Generalises claims_c_verdicts.py from depth's δ1 to a task's
primary metric.  For each claim: the paired difference over the seeds both cells have, its 95% CI,
paired t, two-sided p, MDD (power 0.8) and the verdict of ``edgekd.report.stats.paired`` ("held" /
"opposite" only when the interval excludes 0), beside the paper's Table 2 effect.  Claim 5: the
final spectrum of P itself (as the paper's Figure 3 plots it) and of P - P0, inverted - traditional.
Also writes every results row with the commit and the command that made it, and copies the small
per-run files the page quotes (summary, config, metrics, the final spectrum row) under OUT/runs/.
``--holm``: Holm's step-down correction over the claims of the given verdict folders.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
from pathlib import Path

import numpy as np

# The paper's Table 2 (inverted projection; COCO mIoU in points with 80 classes, PSNR in dB), in edgekd's units.
PAPER = {
    "segmentation": {"unit": 0.01, "none": 34.60, "random": 37.20, "classification": 36.00, "label": "mIoU (COCO, points)"},
    "colourisation": {"unit": 1.0, "none": 20.48, "random": 20.99, "classification": 21.27, "label": "PSNR (dB)"},
}
REGIME = ("--profile jetson --task {task} --student mobilenetv2_100 --student-weights imagenet --image-size 96 128 "
          "--train-size 64 --val-size 256 --batch-size 32 --epochs 40 --lr 1e-3 --workers 0 --device cpu "
          "--set train.warmup_steps=8 --set train.eval_every=0 --set train.train_eval_size=64 "
          "--set distill.spectral_norm=fro --set distill.spectral_scope=batch")
RANDOM, LITE = "random-fitnet", "efficientnet_lite0-fitnet"
# (teacher, cell id without its projection): the FitNets cells whose projector spectra decide claim 5
BASES = (("random ViT-B/32", RANDOM), ("ImageNet EfficientNet-Lite0", LITE))
# (claim, teacher, cell, reference, paper's teacher key for the effect over no teacher or None)
CHECKS = [
    ("1. dissimilar teacher: inverted > traditional", "random ViT-B/32", f"{RANDOM}-inverted", f"{RANDOM}-traditional", None),
    ("1. dissimilar teacher: inverted > traditional", "ImageNet EfficientNet-Lite0", f"{LITE}-inverted", f"{LITE}-traditional", None),
    ("3. random teacher + inverted > no teacher", "random ViT-B/32", f"{RANDOM}-inverted", "none", "random"),
    ("4. spectral loss alone > no teacher", "none (r = 2, fro, auto)", "none-r2", "none", None),
    ("(classifier) inverted > no teacher", "ImageNet EfficientNet-Lite0", f"{LITE}-inverted", "none", "classification"),
    ("(random teacher) traditional > no teacher", "random ViT-B/32", f"{RANDOM}-traditional", "none", None),
    ("(classifier) traditional > no teacher", "ImageNet EfficientNet-Lite0", f"{LITE}-traditional", "none", None),
]
PRIMARY = {"1. dissimilar teacher: inverted > traditional", "3. random teacher + inverted > no teacher",
           "4. spectral loss alone > no teacher"}


def two_sided_p(t, n):
    from edgekd.report.stats import t_cdf

    if t is None or n < 2:
        return None
    return float(2.0 * (1.0 - t_cdf(abs(t), n - 1)))


def verdict_text(p) -> str:
    return {"better": "**held**", "worse": "**opposite**"}.get(p.verdict, p.verdict)


def by_seed(rows, cell_id, key):
    return {r["seed"]: r["metrics"].get(key) for r in rows if r["id"] == cell_id}


def paper_effect(task: str, key) -> dict | None:
    if key is None:
        return None
    p = PAPER[task]
    return {"abs": (p[key] - p["none"]) * p["unit"], "rel": p[key] / p["none"] - 1.0}


def claim_rows(rows, ids, task, metric):
    from edgekd.report.stats import paired

    out = []
    for claim, teacher, a, b, paper_key in CHECKS:
        if a not in ids or b not in ids:
            continue
        p = paired(by_seed(rows, a, metric), by_seed(rows, b, metric))
        out.append({"claim": claim, "teacher": teacher, "cell": a, "reference": b, "metric": metric, **p.to_dict(),
                    "p": two_sided_p(None if not math.isfinite(p.t) else p.t, p.n), "verdict_text": verdict_text(p),
                    "paper": paper_effect(task, paper_key), "primary": claim in PRIMARY})
    return out


def seed_spectra(grid: Path, cid: str) -> dict:
    """{seed: {"P": summary, "P_minus_P0": summary}} from the last row of each run's spectrum.jsonl."""
    from edgekd.fileio import read_jsonl
    from edgekd.report.plots import spectrum_summary

    res = {}
    for f in sorted((grid / "runs" / cid).glob("seed*/spectrum.jsonl")):
        if not (f.parent / "summary.json").exists():  # a run still training (or stopped): not a result
            continue
        last = read_jsonl(f)[-1]
        res[int(f.parent.name[4:])] = {"P": spectrum_summary(last["singular_values"]),
                                       "P_minus_P0": spectrum_summary(last.get("delta_singular_values", []))
                                       if last.get("delta_singular_values") else None}
    return res


def spectra_and_claim5(grid: Path, ids):
    """Mean spectrum summaries per cell, and claim 5 (inverted P lower effective rank than traditional) per form."""
    from edgekd.report.stats import paired

    per = {cid: seed_spectra(grid, cid) for cid in ids if "fitnet" in cid}
    mean = {}
    for cid, seeds in per.items():
        mean[cid] = {"seeds": len(seeds)}
        for form in ("P", "P_minus_P0"):
            xs = [s[form] for s in seeds.values() if s[form]]
            mean[cid][form] = {k: float(np.mean([x[k] for x in xs])) for k in xs[0]} if xs else {}
    claims = []
    for teacher, base in BASES:
        inv, trad = per.get(f"{base}-inverted"), per.get(f"{base}-traditional")
        if not inv or not trad:
            continue
        for form in ("P", "P_minus_P0"):
            a = {s: v[form]["effective_rank"] for s, v in inv.items() if v[form]}
            b = {s: v[form]["effective_rank"] for s, v in trad.items() if v[form]}
            p = paired(a, b, higher_is_better=False)  # the claim: inverted's rank is LOWER
            claims.append({"claim": "5. inverted P collapses with a dissimilar teacher (effective rank, inverted − traditional)",
                           "teacher": teacher, "form": form, "cell": f"{base}-inverted", "reference": f"{base}-traditional",
                           "metric": f"effective_rank({form})", **p.to_dict(), "p": two_sided_p(
                               None if not math.isfinite(p.t) else p.t, p.n),
                           "verdict_text": verdict_text(p), "paper": None, "primary": form == "P"})
    return mean, claims


def cell_table(rows, ids, metric):
    cells = {}
    for cid in ids:
        rs = [r for r in rows if r["id"] == cid]
        vals = [r["metrics"][metric] for r in rs]
        train = [r["metrics"].get(f"train_{metric}", np.nan) for r in rs]
        w = [r["loss_weights"] for r in rs]
        cells[cid] = {"n": len(rs), "val": float(np.mean(vals)), "val_sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else None,
                      "train": float(np.mean(train)), "grad_ratio": rs[0]["grad_ratio"],
                      "weights": {k: float(np.mean([x.get(k, 0.0) for x in w])) for k in ("distill", "spectral")},
                      "run_minutes": float(np.sum([r["run_minutes"] for r in rs]))}
    return cells


def cell_args(row: dict) -> str:
    """The `edgekd compare` cell options benchmarks/claims/claims_tasks.sh gave for this row's cell."""
    r, cid = row["grad_ratio"], row["id"]
    if cid == "none":
        return "--teachers none"
    if cid == "none-r2":
        return f"--teachers none --spectral 2 --set distill.spectral_weight=auto --set distill.grad_ratio={r}"
    if cid.startswith(RANDOM):
        return f"--methods fitnet --teachers random --projections inverted,traditional --distill-weight auto --set distill.grad_ratio={r}"
    if cid.startswith(LITE):
        return (f"--methods fitnet --teachers efficientnet_lite0 --teacher-weights efficientnet_lite0=imagenet "
                f"--projections {row['projection']} --distill-weight auto --set distill.grad_ratio={r}")
    return "(not a cell of claims_tasks.sh)"


def run_minutes(run_dir: Path) -> float:
    """Wall minutes of one run: config.json is written as it starts, summary.json as it ends."""
    return (os.path.getmtime(run_dir / "summary.json") - os.path.getmtime(run_dir / "config.json")) / 60.0


def logged_command(logs: Path | None, plan: str, row: dict, work: Path) -> str | None:
    """The command benchmarks/claims/claims_queue.py ran for this row (the first line of its log), WORK for its folder."""
    log = logs / f"{plan}_{row['id']}_seed{row['seed']}.log" if logs else None
    if not log or not log.exists():
        return None
    return "OMP_NUM_THREADS=1 " + log.read_text().splitlines()[0].replace(str(work), "WORK")


def enrich_rows(rows, task, commit, logs: Path | None = None, plan: str = "", work: Path = Path("WORK")):
    """Add the commit, the command, the grad ratio, the loss weights and the run time to each results row."""
    for r in rows:
        run = Path(r["run"])
        cfg = json.loads((run / "config.json").read_text())
        summ = json.loads((run / "summary.json").read_text())
        r["grad_ratio"] = cfg["distill"]["grad_ratio"]
        r["loss_weights"] = summ.get("loss_weights", {})
        r["data_seed"] = cfg["data"]["seed"]
        kept = run / "kept_row.json"  # a run put back from the repository (claims_queue.py --restore): its own row's facts
        if kept.exists():
            first = json.loads(kept.read_text())
            r.update({k: first[k] for k in ("run_minutes", "commit", "command")})
            r["run"] = f"runs/{r['id']}/seed{r['seed']}"
            continue
        r["run_minutes"] = run_minutes(run)
        r["commit"] = commit
        r["command"] = logged_command(logs, plan, r, work) or (
            f"OMP_NUM_THREADS=1 python -m edgekd compare {REGIME.format(task=task)} --seeds 5 --quiet "
            f"--out GRID {cell_args(r)}  # run: GRID/runs/{r['id']}/seed{r['seed']}")
        r["run"] = f"runs/{r['id']}/seed{r['seed']}"
    return rows


def round_sig(xs, sig=6):
    return [float(f"{x:.{sig}g}") for x in xs]


def keep_run_files(src: Path, dst: Path) -> None:
    """The small per-run files the page quotes (no checkpoints); the spectrum's last row only, rounded."""
    from edgekd.fileio import atomic_write_text, read_jsonl

    dst.mkdir(parents=True, exist_ok=True)
    for name in ("summary.json", "config.json", "metrics.jsonl", "diagnostics.json"):
        if (src / name).exists():
            atomic_write_text(dst / name, (src / name).read_text())
    if (src / "spectrum.jsonl").exists():
        last = read_jsonl(src / "spectrum.jsonl")[-1]
        last = {k: round_sig(v) if isinstance(v, list) else v for k, v in last.items()}
        atomic_write_text(dst / "spectrum_final.json", json.dumps(last) + "\n")


def pilot_table(pilot: Path, metric: str) -> dict:
    """Every held-out-seed run: final val/train metric, loss weights, run time; the no-teacher curve; the choices."""
    from edgekd.fileio import read_jsonl

    runs, curve = {}, []
    if not pilot.exists():
        return {"runs": runs, "none_curve": curve, "choices": {}}
    for d in sorted(p for p in pilot.iterdir() if (p / "summary.json").exists()):
        s = json.loads((d / "summary.json").read_text())
        cfg = json.loads((d / "config.json").read_text())
        runs[d.name] = {"val": s["final"][metric], "train": s["final"].get(f"train_{metric}"),
                        "grad_ratio": cfg["distill"]["grad_ratio"], "weights": s.get("loss_weights", {}),
                        "run_minutes": run_minutes(d)}
    if (pilot / "none" / "metrics.jsonl").exists():
        curve = [{"epoch": r["epoch"], "val": r[metric], "train": r.get(f"train_{metric}")}
                 for r in read_jsonl(pilot / "none" / "metrics.jsonl") if metric in r]
    choices = {f.stem[len("choice-"):]: json.loads(f.read_text()) for f in sorted(pilot.glob("choice-*.json"))}
    return {"runs": runs, "none_curve": curve, "choices": choices}


def fmt(x, d=4, sign=True):
    return "—" if x is None else (f"{x:+.{d}f}" if sign else f"{x:.{d}f}")


def paper_text(c, task):
    if not c["paper"]:
        return "—"
    unit = PAPER[task]["unit"]
    return f"{c['paper']['abs']:+.4g} ({c['paper']['rel']:+.1%}; {c['paper']['abs'] / unit:+.2f} {PAPER[task]['label']})"


def claims_md(claims, task, metric):
    lines = [f"| claim | teacher | cell − reference | pairs | Δ {metric} | rel. | 95% CI | t | p | MDD | paper's effect | verdict |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in claims:
        ci = "—" if c["ci_low"] is None else f"[{c['ci_low']:+.4f}, {c['ci_high']:+.4f}]"
        rel = "—" if c["rel"] is None or c["metric"].startswith("effective") else f"{c['rel']:+.1%}"
        form = f" ({c['form'].replace('_minus_', ' − ')})" if "form" in c else ""
        lines.append(f"| {c['claim']}{form} | {c['teacher']} | {c['cell']} − {c['reference']} | {c['n']} | {fmt(c['mean'])} | {rel} | "
                     f"{ci} | {fmt(c['t'], 2)} | {fmt(c['p'], 3, sign=False)} | {fmt(c['mdd'], sign=False)} | "
                     f"{paper_text(c, task)} | {c['verdict_text']} |")
    return lines


def cells_md(cells, spec, metric):
    lines = ["", f"| cell | seeds | val {metric} (mean ± sd) | train {metric} | grad ratio | w distill | w spectral | run-minutes |",
             "|---|---|---|---|---|---|---|---|"]
    for cid, g in cells.items():
        sd = "" if g["val_sd"] is None else f" ± {g['val_sd']:.4f}"
        wd = f"{g['weights']['distill']:.3g}" if "fitnet" in cid else "—"
        ws = f"{g['weights']['spectral']:.3g}" if cid.endswith("-r2") else "—"
        ratio = g["grad_ratio"] if cid != "none" else "—"
        lines.append(f"| {cid} | {g['n']} | {g['val']:.4f}{sd} | {g['train']:.4f} | {ratio} | {wd} | {ws} | {g['run_minutes']:.0f} |")
    lines += ["", "| cell | seeds | P: top-1 energy / rank > 1% / eff. rank | P − P0: top-1 energy / rank > 1% / eff. rank |",
              "|---|---|---|---|"]
    fp = lambda x: f"{x['energy_top1']:.3f} / {x['rank_above_1pct']:.0f} / {x['effective_rank']:.1f}" if x else "—"  # noqa: E731
    for cid, s in spec.items():
        lines.append(f"| {cid} | {s['seeds']} | {fp(s['P'])} | {fp(s['P_minus_P0'])} |")
    return lines


def pilot_md(pilot, metric):
    lines = [f"| run | val {metric} | train {metric} | grad ratio | w distill / w spectral | run-minutes |", "|---|---|---|---|---|---|"]
    for name, r in pilot["runs"].items():
        w = r["weights"]
        lines.append(f"| {name} | {r['val']:.4f} | {fmt(r['train'], sign=False)} | {r['grad_ratio'] if name != 'none' else '—'} | "
                     f"{w.get('distill', 0):.3g} / {w.get('spectral', 0):.3g} | {r['run_minutes']:.1f} |")
    if pilot["none_curve"]:
        lines += ["", f"No-teacher curve, seed 100 (epoch: val / train {metric}): " + ", ".join(
            f"{c['epoch']}: {c['val']:.4f} / {fmt(c['train'], sign=False)}" for c in pilot["none_curve"])]
    for k, c in pilot["choices"].items():
        lines.append(f"\nChosen for {k}: grad ratio {c['chosen']} (rule: best val {c['metric']} on seed 100; {c['values']}).")
    return lines


def decide(task_dir: Path, task: str, edgekd: Path, out: Path) -> None:
    from edgekd.fileio import atomic_write_text
    from edgekd.report.compare import collect
    from edgekd.tasks import task_class

    metric = task_class(task).primary_metric
    grid = task_dir / "grid"
    commit = subprocess.run(["git", "-C", str(edgekd), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    rows = collect(grid)
    for r in rows:
        keep_run_files(Path(r["run"]), out / "runs" / r["id"] / f"seed{r['seed']}")
    work = task_dir.resolve().parent  # claims_queue.py's WORK (its logs/ name each run's command)
    rows = enrich_rows(rows, task, commit, work / "logs", task_dir.name, work)
    ids = sorted({r["id"] for r in rows})
    spec, claim5 = spectra_and_claim5(grid, ids)
    claims = claim_rows(rows, ids, task, metric) + claim5
    cells, pilot = cell_table(rows, ids, metric), pilot_table(task_dir / "pilot", metric)
    for name in pilot["runs"]:
        keep_run_files(task_dir / "pilot" / name, out / "pilot" / name)
    for f in (task_dir / "pilot").glob("choice-*.json"):
        atomic_write_text(out / "pilot" / f.name, f.read_text())
    text = "\n".join(claims_md(claims, task, metric) + cells_md(cells, spec, metric) + [""] + pilot_md(pilot, metric))
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "verdicts.md", text + "\n")
    atomic_write_text(out / "results.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    atomic_write_text(out / "verdicts.json", json.dumps({"task": task, "metric": metric, "commit": commit, "claims": claims,
                                                         "cells": cells, "spectra": spec, "pilot": pilot}, indent=1))


def holm(p_values: list[float], alpha: float = 0.05) -> list[bool]:
    """Holm's step-down: which of the hypotheses are rejected at family-wise level ``alpha``."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    reject = [False] * len(p_values)
    for rank, i in enumerate(order):
        if p_values[i] > alpha / (len(p_values) - rank):
            break
        reject[i] = True
    return reject


def holm_report(folders: list[Path], out: Path) -> None:
    """Holm over the primary claims (1, 3, 4, 5 on P) of every folder together, and within each task."""
    from edgekd.fileio import atomic_write_text

    tests = []
    for f in folders:
        v = json.loads((f / "verdicts.json").read_text())
        tests += [{"task": v["task"], **{k: c.get(k) for k in ("claim", "teacher", "form", "cell", "reference", "mean", "p", "verdict", "verdict_text")}}
                  for c in v["claims"] if c["primary"] and c["p"] is not None]
    for scope in ("all", *sorted({t["task"] for t in tests})):
        idx = [i for i, t in enumerate(tests) if scope in ("all", t["task"])]
        for i, r in zip(idx, holm([tests[i]["p"] for i in idx])):
            tests[i][f"holm_{scope}"] = r and tests[i]["verdict"] in ("better", "worse")
    lines = [f"Holm over m = {len(tests)} primary tests (both tasks), and within each task (α = 0.05, two-sided paired t):", "",
             "| task | claim | teacher | cell − reference | Δ | p | resolved (uncorrected) | survives Holm (both tasks) | survives Holm (task) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for t in tests:
        form = f" ({t['form'].replace('_minus_', ' − ')})" if t.get("form") else ""
        lines.append(f"| {t['task']} | {t['claim']}{form} | {t['teacher']} | {t['cell']} − {t['reference']} | {t['mean']:+.4f} | "
                     f"{t['p']:.2g} | {t['verdict_text']} | {'yes' if t['holm_all'] else 'no'} | {'yes' if t['holm_' + t['task']] else 'no'} |")
    text = "\n".join(lines)
    print(text)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "holm.md", text + "\n")
    atomic_write_text(out / "holm.json", json.dumps(tests, indent=1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", nargs="+", type=Path, help="WORK/TASK (or, with --holm, verdict folders)")
    ap.add_argument("--task", default="segmentation")
    ap.add_argument("--edgekd", type=Path, default=Path("."), help="the checkout the grid ran from (its commit is recorded)")
    ap.add_argument("--holm", action="store_true")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    if a.holm:
        holm_report(a.folders, a.out)
    else:
        decide(a.folders[0], a.task, a.edgekd, a.out)


if __name__ == "__main__":
    main()
