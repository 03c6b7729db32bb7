"""Figures: the projector's spectrum over epochs (the paper's Figure 3), training curves,
predictions next to ground truth (Figure 2), and a comparison's metric per cell with error bars."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..fileio import read_jsonl


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def effective_rank(sv) -> float:
    """exp(entropy) of the normalised singular values (Roy & Vetterli 2007)."""
    s = np.asarray(sv, np.float64)
    s = s[s > 0]
    if s.size == 0:
        return 0.0
    p = s / s.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def energy_share(sv, k: int) -> float:
    """Fraction of sum(sigma^2) in the top ``k`` singular values: how much of P lives in k directions."""
    s = np.sort(np.asarray(sv, np.float64))[::-1] ** 2
    return float(s[:k].sum() / s.sum()) if s.sum() > 0 else 0.0


def spectrum_summary(sv) -> dict:
    return {"effective_rank": effective_rank(sv), "rank_above_1pct": rank_at(sv), "energy_top1": energy_share(sv, 1),
            "energy_top8": energy_share(sv, 8)}


def rank_at(sv, frac: float = 0.01) -> int:
    """Singular values above ``frac`` of the largest: the green area of the paper's Figure 3."""
    s = np.asarray(sv, np.float64)
    return int((s > frac * s.max()).sum()) if s.size else 0


def save_figure(fig, path: Path, dpi: int = 110) -> Path:
    """``fig`` as a PNG at ``path``, written atomically (its folder made), and closed."""
    from ..fileio import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=dpi, bbox_inches="tight"))
    pyplot().close(fig)
    return path


def plot_spectrum(run_dir: Path, ax=None, title: str | None = None, out: Path | None = None):
    """Singular values of P (normalised by the largest) per epoch; returns the final effective rank."""
    plt = pyplot()
    rows = read_jsonl(Path(run_dir) / "spectrum.jsonl")
    if not rows:
        return None
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
    cmap = plt.get_cmap("viridis")
    for i, r in enumerate(rows):
        s = np.asarray(r["singular_values"], np.float64)
        ax.semilogy(np.arange(1, s.size + 1), s / s.max(), color=cmap(i / max(1, len(rows) - 1)), lw=1.2,
                    label=f"epoch {r['epoch']}" if i in (0, len(rows) - 1) else None)
    last = np.asarray(rows[-1]["singular_values"])
    k = rank_at(last)
    # The band marks the directions P actually uses: the paper's Figure 3 shades the same region.
    ax.axvspan(1, max(1, k), color="tab:green", alpha=0.15, label=f"{k} values above 1% of the largest")
    er = effective_rank(last)
    top = energy_share(last, 1)
    ax.set_title(title or f"spectrum of P (effective rank {er:.1f}, {k} above 1%, top-1 energy {top:.0%})", fontsize=9)
    ax.set_xlabel("singular value index", fontsize=8)
    ax.set_ylabel("sigma / sigma_max", fontsize=8)
    ax.set_ylim(1e-4, 1.5)
    ax.legend(fontsize=7)
    if own:
        save_figure(fig, out or Path(run_dir) / "report" / "spectrum.png")
    return er


def loss_scale(values) -> str:
    """Log scale only when the losses span a decade or more: otherwise it hides their change."""
    v = [x for x in values if np.isfinite(x) and x > 0]
    return "log" if v and max(v) / min(v) >= 10 else "linear"


def plot_curves(run_dir: Path, primary: str) -> Path | None:
    """Training losses per step (log scale only when they span a decade or more) and the validation metric per epoch."""
    plt = pyplot()
    from matplotlib.ticker import MaxNLocator

    steps = read_jsonl(Path(run_dir) / "steps.jsonl")
    epochs = read_jsonl(Path(run_dir) / "metrics.jsonl")
    if not steps:
        return None
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6))
    x = [s["step"] for s in steps]
    values = []
    for k in [k for k in steps[0] if k not in ("step", "epoch", "lr")]:
        ys = [s.get(k, np.nan) for s in steps]
        values += [v for v in ys if np.isfinite(v) and v > 0]
        a.plot(x, ys, lw=1, label=k, marker="o" if len(x) < 20 else None, ms=3)
    a.set_yscale(loss_scale(values))
    a.xaxis.set_major_locator(MaxNLocator(integer=True))
    a.set_xlabel("optimiser step")
    a.set_ylabel("loss")
    a.set_title("training losses", fontsize=9)
    a.legend(fontsize=7)
    if epochs and primary in epochs[0]:
        b.plot([e["epoch"] for e in epochs], [e[primary] for e in epochs], "o-")
        b.xaxis.set_major_locator(MaxNLocator(integer=True))
        b.set_xlabel("epoch")
        b.set_ylabel(primary)
        b.set_title(f"validation {primary}", fontsize=9)
    else:
        b.axis("off")
    fig.tight_layout()
    return save_figure(fig, Path(run_dir) / "report" / "curves.png")


def plot_predictions(run_dir: Path, n: int = 4, info: dict | None = None) -> Path | None:
    """Input, ground truth and prediction for the first ``n`` validation images (needs torch).

    ``info``, when given, receives which checkpoint drew them and its metrics (for the page's caption)."""
    import torch

    from ..bench.evaluate import validation_batch
    from ..models.run import choose_checkpoint, load_student

    ckpt, _ = choose_checkpoint(run_dir, allow_unfinished=True, log=lambda _: None)  # best.pt, else last.pt
    model, task, cfg, ck = load_student(ckpt)
    if info is not None:
        info.update(checkpoint=ckpt.name, epoch=ck.get("epoch"), metrics=ck.get("metrics") or {},
                    num_classes=getattr(task, "num_classes", None))
    x, samples = validation_batch(cfg, task, n)
    with torch.no_grad():
        pred = model(torch.from_numpy(x)).float().numpy()
    return save_figure(prediction_figure(task, samples, pred), Path(run_dir) / "report" / "predictions.png")


def prediction_figure(task, samples: list[dict], pred: np.ndarray):
    """One column per sample: input, ground truth and prediction as the task draws them; where the ground
    truth is no picture (a class label), one row of inputs captioned with the true and predicted labels."""
    plt = pyplot()
    context = task.picture_context(samples)
    truths = [task.truth_picture(s, context) for s in samples]
    if all(t is None for t in truths):
        fig, axes = plt.subplots(1, len(samples), figsize=(3 * len(samples), 3), squeeze=False)
        for i, s in enumerate(samples):
            axes[0, i].imshow(task.to_picture(pred[i], s, context))
            axes[0, i].set_title(task.caption(pred[i], s), fontsize=8)
            axes[0, i].axis("off")
        return fig
    fig, axes = plt.subplots(3, len(samples), figsize=(3 * len(samples), 7), squeeze=False)
    for i, s in enumerate(samples):
        pictures = (task.input_image(s), truths[i], task.to_picture(pred[i], s, context))
        for r, (name, picture) in enumerate(zip(("input", "ground truth", "prediction"), pictures)):
            if picture is not None:
                axes[r, i].imshow(picture)
            axes[r, i].axis("off")
            if i == 0:
                axes[r, i].set_title(name, fontsize=9, loc="left")
    _draw_key(fig, axes, task.figure_key(samples, pred, context))
    return fig


def _draw_key(fig, axes, key: dict | None):
    """The task's key to its pictures: a colour bar (e.g. metres) or a legend of the classes shown."""
    if not key:
        return
    if "colour_bar" in key:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        bar = key["colour_bar"]
        mappable = ScalarMappable(norm=Normalize(bar["vmin"], bar["vmax"]), cmap=bar["cmap"])
        fig.colorbar(mappable, ax=axes[1:, :].ravel().tolist(), shrink=0.8, label=bar["label"])
    if key.get("classes"):
        from matplotlib.patches import Patch

        handles = [Patch(color=np.asarray(rgb) / 255.0, label=name) for rgb, name in key["classes"]]
        fig.legend(handles=handles, loc="lower center", ncol=min(6, len(handles)), fontsize=7, frameon=False,
                   bbox_to_anchor=(0.5, -0.02))


def plot_compare(out: Path, rows: list[dict], task: str) -> Path | None:
    """The primary metric per cell, mean +- std over seeds, the no-teacher baseline as a line."""
    from .compare import summarise

    s = summarise(rows, task)
    stats, info = s["stats"], s["info"]
    primary = s["metrics"][0] if s["metrics"] else ""
    cells = [c for c in info if primary in stats.get(c, {})]
    if not cells:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(cells)), 4))
    means = [stats[c][primary][0] for c in cells]
    stds = [stats[c][primary][1] for c in cells]
    colours = ["tab:gray" if info[c]["teacher"] == "none" else ("tab:blue" if info[c]["projection"] == "inverted" else "tab:orange") for c in cells]
    ax.bar(range(len(cells)), means, yerr=stds, color=colours, capsize=3)
    base = next((stats[c][primary][0] for c in cells if info[c]["teacher"] == "none" and not info[c]["spectral"]), None)
    if base is not None:
        ax.axhline(base, color="k", lw=0.8, ls="--", label="no teacher")
        ax.legend(fontsize=8)
    ax.set_xticks(range(len(cells)))
    ax.set_xticklabels(cells, rotation=70, ha="right", fontsize=7)
    lo = min(m - s_ for m, s_ in zip(means, stds))
    hi = max(m + s_ for m, s_ in zip(means, stds))
    ax.set_ylim(lo - 0.1 * (hi - lo + 1e-9), hi + 0.1 * (hi - lo + 1e-9))
    ax.set_ylabel(primary)
    ax.set_title(f"{primary} per cell (mean ± std over seeds; blue inverted, orange traditional)", fontsize=9)
    return save_figure(fig, out / "report" / "compare.png")


def plot_compare_spectra(out: Path, rows: list[dict]) -> Path | None:
    """Figure 3: the projector's spectrum for each teacher (columns) and projection (rows), first seed, FitNets where run."""
    plt = pyplot()
    firsts = {}
    for r in rows:
        if r["teacher"] == "none" or r["spectral"]:
            continue
        key = (r["label"], r["projection"])
        if key not in firsts or (r["method"] == "fitnet" and firsts[key]["method"] != "fitnet"):
            firsts[key] = r
    if not firsts:
        return None
    teachers = list(dict.fromkeys(k[0] for k in firsts))
    projs = [p for p in ("traditional", "inverted") if any(k[1] == p for k in firsts)]
    fig, axes = plt.subplots(len(projs), len(teachers), figsize=(3.8 * len(teachers), 3.2 * len(projs)), squeeze=False,
                             constrained_layout=True)
    ranks = {}
    for i, p in enumerate(projs):
        for j, t in enumerate(teachers):
            r = firsts.get((t, p))
            ax = axes[i, j]
            if r is None:
                ax.axis("off")
                continue
            plot_spectrum(Path(r["run"]), ax=ax, title=f"{t}, {p} ({r['method']})")
            last = read_jsonl(Path(r["run"]) / "spectrum.jsonl")[-1]["singular_values"]
            ranks[f"{t}/{p}"] = spectrum_summary(last)
    path = save_figure(fig, out / "report" / "spectra.png")
    from ..fileio import atomic_write_json

    atomic_write_json(out / "report" / "effective_ranks.json", ranks)
    return path



def plot_deployment(run_dir: Path, rows: list[dict], primary: str) -> Path | None:
    """Latency (bench p50 at batch 1) against the primary metric, one point per exported precision."""
    pts = [r for r in rows if r.get("p50_ms") is not None and r.get("metric") is not None]
    if not pts:
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for r in pts:
        ax.plot(r["p50_ms"], r["metric"], "o", ms=7)
        ax.annotate(f"{r['precision']} ({r['backend']})", (r["p50_ms"], r["metric"]), textcoords="offset points", xytext=(6, 4), fontsize=8)
    ax.set_xlabel("latency p50 at batch 1 (ms)")
    ax.set_ylabel(f"validation {primary}")
    ax.set_title("deployment: latency against accuracy per precision", fontsize=9)
    ax.margins(0.25)
    return save_figure(fig, Path(run_dir) / "report" / "deployment.png")


def plot_int8_sensitivity(run_dir: Path, record: dict, top: int = 15) -> Path | None:
    """The INT8 sensitivity table of export.json (``int8.sensitivity``) as bars: the error each unit adds quantized
    alone, largest first; the units kept in float (``int8.float_nodes``) drawn in another colour."""
    sens = record.get("sensitivity") or {}
    units = (sens.get("units") or [])[:top]
    if not units:
        return None
    plt = pyplot()
    floated = set(record.get("float_nodes") or [])
    fig, ax = plt.subplots(figsize=(6.4, 0.28 * len(units) + 1.2))
    errs = [max(u["output_error"], 1e-12) for u in units]
    colours = ["tab:red" if set(u["nodes"]) & floated else "tab:blue" for u in units]
    ax.barh(range(len(units)), errs, color=colours)
    ax.set_yticks(range(len(units)), [f"{u['unit'][-40:]} ({u['metric_drop']:+.3f})" for u in units], fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel(f"output error quantized alone (relative energy; {sens.get('images')} calibration images)")
    ax.set_title(f"INT8 sensitivity per {sens.get('units_are', 'node')[:-1]} (in brackets: {sens.get('primary_metric')} drop); "
                 "red: kept in float", fontsize=8)
    return save_figure(fig, Path(run_dir) / "report" / "int8_sensitivity.png")


def plot_forest(out: Path, diffs: list[dict], task: str) -> Path | None:
    """Forest plot of the differences: each cell − its reference with its 95% interval, ±MDD shaded, 0 marked."""
    from .compare import primary_metric

    if not diffs:
        return None
    primary, higher = primary_metric(task)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 0.8 + 0.32 * len(diffs)))
    colours = {"better": "tab:green", "worse": "tab:red"}
    for y, d in enumerate(reversed(diffs)):
        if d["mean"] is None:
            continue
        c = colours.get(d["verdict"], "tab:gray")
        if d["mdd"] is not None:  # what these seeds could detect, around 0
            ax.plot([-d["mdd"], d["mdd"]], [y, y], color=c, alpha=0.18, lw=7, solid_capstyle="butt")
        if d["ci_low"] is not None:
            ax.plot([d["ci_low"], d["ci_high"]], [y, y], color=c, lw=1.6)
        ax.plot([d["mean"]], [y], "o", color=c, mfc=c if d["n"] > 1 else "white", ms=5)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(range(len(diffs)))
    ax.set_yticklabels([f"{d['cell']} vs {d['against']} (n={d['n']})" for d in reversed(diffs)], fontsize=7)
    ax.set_ylim(-0.7, len(diffs) - 0.3)
    ax.set_xlabel(f"Δ {primary}, cell − reference ({'higher' if higher else 'lower'} is better)")
    ax.set_title("paired differences over seeds: dot = mean, line = 95% CI, shaded = ±MDD (80% power);\n"
                 "green better, red worse, grey not resolved, hollow = 1 seed", fontsize=8)
    return save_figure(fig, out / "report" / "forest.png")
