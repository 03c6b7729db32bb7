"""Regime M of benchmarks/claims/claims.md (a projector that cannot memorise): claims 1, 3 and 5 with intervals, and the
projector's fit and rank followed over training.

    python benchmarks/claims/claims_m_verdicts.py WORK/depth_m --edgekd EDGEKD --out benchmarks/claims/results/claims_cpu_m

WORK/depth_m/grid is the compare folder ``benchmarks/claims/claims_queue.py --merge`` writes.  The verdicts reuse
claims_tasks_verdicts.py (paired difference, 95% CI, p, MDD, ``edgekd.report.stats.paired``'s verdict; claim 5 on P
and on P - P0) with the regime's cells; the paper's effects are its Table 1 (NYUv2 δ1: no teacher 0.845, random
teacher inverted 0.851, traditional 0.828).  Over training, per FitNets cell and epoch, the mean over seeds of the
projector's R^2 on training and validation images (``diagnostics.json`` ``projector_fit``) and the effective rank
of P and of P - P0 (``spectrum.jsonl``): trajectories.md/.json and trajectories.png.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import claims_tasks_verdicts as V  # noqa: E402

RANDOM = "random-vit_tiny_patch16_224-fitnet"
V.RANDOM = RANDOM
V.BASES = (("random ViT-Ti/16", RANDOM),)
V.PAPER["depth"] = {"unit": 1.0, "none": 0.845, "random": 0.851, "label": "δ1 (NYUv2)"}
V.CHECKS = [
    ("1. dissimilar teacher: inverted > traditional", "random ViT-Ti/16", f"{RANDOM}-inverted", f"{RANDOM}-traditional", None),
    ("3. random teacher + inverted > no teacher", "random ViT-Ti/16", f"{RANDOM}-inverted", "none", "random"),
    ("(random teacher) traditional > no teacher", "random ViT-Ti/16", f"{RANDOM}-traditional", "none", None),
]
V.PRIMARY = {"1. dissimilar teacher: inverted > traditional", "3. random teacher + inverted > no teacher"}
EPOCHS_SHOWN = (0, 1, 2, 5, 10, 20, 30, 40)


def run_trajectory(run: Path) -> dict:
    """{epoch: {r2_train, r2_val, memorising, rank_P, rank_dP}} of one finished run."""
    from edgekd.fileio import read_jsonl
    from edgekd.report.plots import effective_rank

    out: dict = {}
    for f in json.loads((run / "diagnostics.json").read_text()).get("projector_fit", []):
        out.setdefault(f["epoch"], {}).update(r2_train=f["r2_train"], r2_val=f["r2_val"], memorising=f["memorising"])
    for row in read_jsonl(run / "spectrum.jsonl"):
        e = out.setdefault(row["epoch"], {})
        e["rank_P"] = effective_rank(row["singular_values"])
        if row.get("delta_singular_values"):
            e["rank_dP"] = effective_rank(row["delta_singular_values"])
    return out


RANKS = ("rank_P", "rank_dP")


def trajectories(grid: Path, earlier: dict | None = None) -> dict:
    """{cell: {epoch: {key: mean over the finished seeds}}, plus seeds and memorising counts}.

    ``earlier``: the trajectories.json of runs put back from the repository (claims_queue.py --restore keeps only
    their spectrum's last row): their per-epoch ranks are its means, weighted by its seeds; their R² is their own."""
    res = {}
    for cell in (f"{RANDOM}-inverted", f"{RANDOM}-traditional"):
        runs = [p.parent for p in sorted((grid / "runs" / cell).glob("seed*/summary.json"))]
        per = [run_trajectory(r) for r in runs]
        if not per:
            continue
        restored = [(r / "RESTORED").exists() for r in runs]
        old = (earlier or {}).get(cell)
        if any(restored):
            seeds_restored = [int(r.name[4:]) for r, x in zip(runs, restored) if x]
            if old is None or sorted(old["seeds"]) != seeds_restored:
                raise SystemExit(f"{cell}: restored seeds {seeds_restored} need --earlier-trajectories with those seeds")
        epochs = sorted(set.intersection(*(set(t) for t in per)))
        mean = {}
        for e in epochs:
            row = {}
            for k in ("r2_train", "r2_val", *RANKS):
                if k in RANKS and any(restored):  # the restored runs' per-epoch ranks: the earlier means
                    fresh = [t[e][k] for t, x in zip(per, restored) if not x and k in t[e]]
                    before = (old["epochs"].get(str(e)) or old["epochs"].get(e) or {}).get(k)
                    if before is None:
                        continue
                    n_old = len(old["seeds"])
                    row[k] = float((n_old * before + sum(fresh)) / (n_old + len(fresh)))
                elif any(k in t[e] for t in per):
                    row[k] = float(np.mean([t[e][k] for t in per if k in t[e]]))
            mean[e] = row
        memo = sum(any(v.get("memorising") for v in t.values()) for t in per)
        res[cell] = {"seeds": [int(r.name[4:]) for r in runs], "epochs": mean, "runs_warned_memorising": memo}
    return res


def trajectories_md(traj: dict) -> list[str]:
    lines = ["| cell | epoch | projector R² train | R² val | gap | eff. rank P | eff. rank P − P0 |", "|---|---|---|---|---|---|---|"]
    for cell, t in traj.items():
        for e in [e for e in EPOCHS_SHOWN if e in t["epochs"]]:
            v = t["epochs"][e]
            lines.append(f"| {cell} ({len(t['seeds'])} seeds) | {e} | {v.get('r2_train', float('nan')):+.3f} | "
                         f"{v.get('r2_val', float('nan')):+.3f} | {v.get('r2_train', 0) - v.get('r2_val', 0):+.3f} | "
                         f"{v.get('rank_P', float('nan')):.1f} | {v.get('rank_dP', float('nan')):.1f} |")
    for cell, t in traj.items():
        lines.append(f"\n{cell}: runs that warned 'the projector memorises' at some epoch: {t['runs_warned_memorising']} "
                     f"of {len(t['seeds'])}.")
    return lines


def plot(traj: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    for cell, t in traj.items():
        ep = sorted(t["epochs"])
        short = cell.rsplit("-", 1)[-1]
        for key, style in (("r2_train", "-"), ("r2_val", "--")):
            ax[0].plot(ep, [t["epochs"][e].get(key, np.nan) for e in ep], style, label=f"{short} {key[3:]}")
        ax[1].plot(ep, [t["epochs"][e].get("rank_P", np.nan) for e in ep], "-", label=f"{short} P")
        ax[1].plot(ep, [t["epochs"][e].get("rank_dP", np.nan) for e in ep], ":", label=f"{short} P − P0")
    ax[0].set(xlabel="epoch", ylabel="projector R²", title="fit on training vs validation images", ylim=(-2, 1))
    ax[1].set(xlabel="epoch", ylabel="effective rank", title="projector spectrum")
    for a in ax:
        a.legend(fontsize=7)
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    from edgekd.fileio import atomic_write_text

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("task_dir", type=Path, help="WORK/depth_m (holding grid/)")
    ap.add_argument("--edgekd", type=Path, default=Path("."))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--earlier-trajectories", type=Path, help="trajectories.json of the runs put back by claims_queue.py --restore")
    a = ap.parse_args()
    V.decide(a.task_dir, "depth", a.edgekd, a.out)
    earlier = json.loads(a.earlier_trajectories.read_text()) if a.earlier_trajectories else None
    traj = trajectories(a.task_dir / "grid", earlier)
    text = "\n".join(trajectories_md(traj))
    print(text)
    atomic_write_text(a.out / "trajectories.md", text + "\n")
    atomic_write_text(a.out / "trajectories.json", json.dumps(traj, indent=1))
    plot(traj, a.out / "trajectories.png")


if __name__ == "__main__":
    main()
