"""``edgekd report``: a Markdown and an HTML page with the figures and tables of a run or a comparison."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

from ..errors import EdgekdError
from ..fileio import atomic_write_text, read_jsonl


def _page(out: Path, title: str, blocks: list[tuple[str, str]]) -> tuple[Path, Path]:
    """blocks: ("md", text shown preformatted), ("rich", Markdown rendered as HTML) or ("img", relative path)."""
    md = [f"# {title}", ""]
    body = [f"<h1>{html.escape(title)}</h1>"]
    for kind, text in blocks:
        if kind == "img":
            md += [f"![{text}]({text})", ""]
            body.append(f'<p><img src="{html.escape(text)}" style="max-width:100%"></p>')
        elif kind == "rich":  # Markdown paragraphs, bullets and tables rendered as HTML
            md += [text, ""]
            body.append(md_to_html(text))
        elif kind == "table":  # (header, rows): a real table in both pages
            head, rows = text
            md += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head), *("| " + " | ".join(r) + " |" for r in rows), ""]
            cells = lambda tag, r: "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in r)  # noqa: E731
            body.append("<table border=1 cellpadding=4 style='border-collapse:collapse'><tr>" + cells("th", head) + "</tr>"
                        + "".join(f"<tr>{cells('td', r)}</tr>" for r in rows) + "</table>")
        elif kind == "h2":
            md += [f"## {text}", ""]
            body.append(f"<h2>{html.escape(text)}</h2>")
        else:
            md += [text, ""]
            body.append(f"<pre>{html.escape(text)}</pre>")
    rdir = out / "report"
    md_path = atomic_write_text(rdir / "report.md", "\n".join(md))
    page = "<!doctype html><meta charset=utf-8><title>{}</title>{}<body style='font-family:sans-serif'>{}</body>".format(
        html.escape(title), _TABLE_CSS, "\n".join(body))
    html_path = atomic_write_text(rdir / "report.html", page)
    return md_path, html_path


def _inline(text: str) -> str:
    """Escape, then **bold** and *italic*."""
    t = html.escape(text)
    t = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", t)
    return re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"<em>\1</em>", t)


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def md_to_html(text: str) -> str:
    """The Markdown edgekd writes (paragraphs, ``* `` bullets, pipe tables) as HTML."""
    out, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("|") and i + 1 < len(lines) and re.fullmatch(r"\s*\|?[\s:|-]+\|?\s*", lines[i + 1]):
            head = "".join(f"<th>{_inline(c)}</th>" for c in _cells(line))
            i += 2
            rows = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in _cells(lines[i])) + "</tr>")
                i += 1
            out.append(f"<table class=md><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
            continue
        if line.startswith("* ") or line.startswith("- "):
            items = []
            while i < len(lines) and (lines[i].startswith("* ") or lines[i].startswith("- ")):
                items.append(f"<li>{_inline(lines[i][2:])}</li>")
                i += 1
            out.append("<ul>" + "".join(items) + "</ul>")
            continue
        m = re.match(r"(#{1,6}) (.*)", line)
        if m:
            out.append(f"<h{len(m[1]) + 1}>{_inline(m[2])}</h{len(m[1]) + 1}>")  # h1 is the page title
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
        i += 1
    return "\n".join(out)


_TABLE_CSS = ("<style>table.md{border-collapse:collapse;font-size:13px;margin:8px 0}"
              "table.md th,table.md td{border:1px solid #ccc;padding:3px 8px;text-align:left}"
              "table.md th{background:#f2f2f2}</style>")
def _metrics_text(m: dict, num_classes=None) -> str:
    # top-5 of fewer than 6 classes is always 1: not a measurement
    shown = {k: v for k, v in m.items() if not k.startswith("train_") and not (k == "top5" and num_classes is not None and num_classes < 6)}
    return ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items())


def metrics_table(record: dict, task, num_classes=None) -> tuple[list, list]:
    """The task's metrics as a small table: one row per metric, validation and training columns."""
    names = [k for k in task.table_metrics if k in record] or [k for k in record if isinstance(record[k], float) and
                                                                  not k.startswith(("train_", "grad_", "weight_")) and k not in ("epoch", "step")]
    names += [k for k in record if k not in names and isinstance(record.get(k), float) and f"train_{k}" in record]
    if num_classes is not None and num_classes < 6:
        names = [k for k in names if k != "top5"]  # top-5 of fewer than 6 classes is always 1: not a measurement
    fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
    rows = [[k + (" (primary)" if k == task.primary_metric else ""), fmt(record.get(k)), fmt(record.get(f"train_{k}"))] for k in names]
    return ["metric", "validation", "training scenes"], rows


def deployment_rows(run_dir: Path, primary: str) -> list[dict]:
    """One row per exported file: size, the newest bench of it (latency, the primary metric), the checkpoint step
    it was made from, and whether the file or its bench still match the run (bench/provenance.py)."""
    from ..bench.provenance import bench_records, run_files, stale_bench

    exp_path = run_dir / "export.json"
    exp = json.loads(exp_path.read_text()) if exp_path.exists() else {}
    bench, files_now = bench_records(run_dir), run_files(run_dir)
    files = {"fp32": run_dir / "model.onnx", "fp16": run_dir / "model.fp16.onnx", "int8": run_dir / "model.int8.onnx"}
    files.update({f"{p.name.split('.')[1]} (TensorRT)": p for p in sorted(run_dir.glob("model.*.engine"))})
    rows = []
    for precision, f in files.items():
        if not f.exists():
            continue
        prov = files_now.get(f.name) or {}
        row = {"precision": precision, "file": f.name, "mb": f.stat().st_size / 1e6, "p50_ms": None, "p90_ms": None,
               "backend": "", "metric": None, "source": "", "step": prov.get("checkpoint_step"), "fingerprint": None,
               "delta": None, "status": [prov["stale"]] if prov.get("stale") else []}
        b = bench.get(f.name)
        if b:
            _bench_row(row, b, primary, stale_bench(b, f))
        if row["metric"] is None and precision in ("int8", "fp32") and Path((exp.get("int8") or {}).get("onnx", "")).name == "model.int8.onnx":
            # export's INT8 check measured fp32 and int8 on the same images: they may be set against each other
            e = exp["int8"]
            row.update(metric=e[f"{precision}_metrics"].get(primary), source=f"export check, {e['eval_images']} images",
                       fingerprint=f"export-check:{e.get('checkpoint_sha256', exp.get('checkpoint_sha256'))}:{e['eval_images']}")
        rows.append(row)
    _deltas(rows)
    return rows


def _bench_row(row: dict, b: dict, primary: str, bench_stale: str | None) -> None:
    """A bench record's figures in a deployment row."""
    lat = b["latency"].get("batch1") or next(iter(b["latency"].values()))
    row.update(p50_ms=lat["p50_ms"], p90_ms=lat["p90_ms"], backend=b["environment"].get("backend", ""))
    acc = b.get("accuracy") or {}
    if primary in acc.get("metrics", {}):
        row.update(metric=acc["metrics"][primary], source=f"bench, {acc['images']} images",
                   fingerprint=(acc.get("data_fingerprint") or {}).get("inputs_sha256"))
        if acc.get("reference_source") and acc.get("delta_vs_reference") is not None:
            row["delta"] = acc["delta_vs_reference"]  # its own fp32 reference, on the same images
    if bench_stale:
        row["status"].append(f"bench stale: {bench_stale}")
    if b.get("measured_at"):
        row["source"] += f", {b['measured_at'][:16].replace('T', ' ')}"


def _deltas(rows: list[dict]) -> None:
    """"vs fp32": a row's own same-images reference, else the fp32 row's metric when both saw the same images."""
    ref = next((r for r in rows if r["precision"] == "fp32" and r["metric"] is not None), None)
    for r in rows:
        if r["delta"] is not None or r["metric"] is None or ref is None:
            continue
        if r["fingerprint"] and r["fingerprint"] == ref["fingerprint"]:
            r["delta"] = r["metric"] - ref["metric"]
        elif r is not ref:
            r["delta_note"] = "other images"


def _deployment_blocks(run_dir: Path, primary: str) -> tuple[list, list]:
    from .plots import plot_deployment

    rows = deployment_rows(run_dir, primary)
    if not rows:
        return [], []
    fmt = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
    table = [[r["precision"], r["file"], f"{r['mb']:.2f}", fmt(r["p50_ms"], ".2f"), fmt(r["p90_ms"], ".2f"), r["backend"] or "-",
              fmt(r["metric"], ".4f"), r.get("delta_note") or fmt(r["delta"], "+.4f"), r["source"] or "-", fmt(r["step"], "d"),
              "; ".join(r["status"]) or "current"] for r in rows]
    head = ["precision", "file", "size (MB)", "p50 (ms)", "p90 (ms)", "backend", primary, "vs fp32", "measured by", "step", "status"]
    blocks = [("h2", "Deployment"), ("table", (head, table)),
              ("md", "vs fp32: only between figures measured on the same images; step: the checkpoint step the file was made "
                     "from; status: 'current', or why the file or its bench no longer matches the run (re-export / re-bench).")]
    if all(r["p50_ms"] is None for r in rows):
        blocks.append(("md", f"no latency yet: bench a file with edgekd bench {run_dir / rows[0]['file']} (its result lands in "
                             f"{run_dir / 'bench'})"))
    made = []
    p = plot_deployment(run_dir, rows, primary)
    if p:
        made.append(p)
        blocks.append(("img", "deployment.png"))
    int8_blocks, int8_made = _int8_blocks(run_dir)
    return blocks + int8_blocks, made + int8_made


def _int8_blocks(run_dir: Path) -> tuple[list, list]:
    """The INT8 sensitivity plot and the float fallback's outcome, from export.json (written by edgekd export)."""
    from .plots import plot_int8_sensitivity

    exp_path = run_dir / "export.json"
    rec = (json.loads(exp_path.read_text()) if exp_path.exists() else {}).get("int8") or {}
    p = plot_int8_sensitivity(run_dir, rec)
    if not p:
        return [], []
    blocks = [("h2", "INT8 sensitivity")]
    fb = rec.get("fallback")
    if fb:
        blocks.append(("md", f"every node quantized: {rec['primary_metric']} drop {fb['drop_all_int8']:+.4f}; "
                             f"{len(fb['added_float_nodes'])} node(s) kept in float: drop {rec['drop']:+.4f} "
                             f"({'within' if fb['met'] else 'NOT within'} --max-drop {rec['max_drop']})"))
    blocks.append(("img", p.name))
    return blocks, [p]


def _projector_blocks(run_dir: Path) -> list:
    """diagnostics.json's projector lines: --projection auto's choice, the decay as a shrinkage, the fit over training."""
    try:
        d = json.loads((run_dir / "diagnostics.json").read_text())
    except (OSError, ValueError):
        return []
    lines = []  # the run wrote every sentence's facts (report/ imports nothing from train/ or distill/)
    if d.get("projection_choice"):
        c = d["projection_choice"]
        lines.append(f"{c.get('summary', 'projection ' + c['chosen'])}; rule: {c['rule']}.")
    if d.get("projector_decay"):
        pd = d["projector_decay"]
        lines.append(f"projector decay: lr {pd['lr']:.3g}, weight decay {pd['weight_decay']:.4g}; decay alone leaves {pd['shrinkage']:.4g} "
                     f"of a weight by the end of the run.")
    fit = d.get("projector_fit") or []
    if fit:
        lines.append("projector fit R^2 (training / validation images) per epoch: "
                     + ", ".join(f"{f['epoch']}: {f['r2_train']:.2f} / {f['r2_val']:.2f}" for f in fit) + ".")
        if any(f.get("memorising") for f in fit):
            lines.append(f"**warning: the projector memorises** ({d.get('projector_fit_rule', '')}): it fits the training batches "
                         f"and explains little of unseen ones.")
    return [("md", line) for line in lines]


def report_run(run_dir: Path, predictions: bool = True) -> list[Path]:
    from .plots import effective_rank, plot_curves, plot_predictions, plot_spectrum

    from ..config import RunConfig
    from ..tasks import create_task

    cfg = RunConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    task = create_task(cfg.model.task, num_classes=2)
    made, blocks, info = [], [], {}
    if predictions and ((run_dir / "best.pt").exists() or (run_dir / "last.pt").exists()):
        made.append(plot_predictions(run_dir, info=info))
    metrics = read_jsonl(run_dir / "metrics.jsonl")
    if metrics:
        blocks.append(("md", f"final metrics (epoch {metrics[-1].get('epoch')}, step {metrics[-1].get('step')}):"))
        blocks.append(("table", metrics_table(metrics[-1], task, info.get("num_classes"))))
    p = plot_curves(run_dir, task.primary_metric)
    if p:
        made.append(p)
        blocks.append(("img", "curves.png"))
    if (run_dir / "spectrum.jsonl").exists():
        plot_spectrum(run_dir)
        sv = read_jsonl(run_dir / "spectrum.jsonl")
        made.append(run_dir / "report" / "spectrum.png")
        delta = [r["delta_singular_values"] for r in sv if "delta_singular_values" in r]
        blocks.append(("md", "effective rank of P per epoch: " + ", ".join(f"{effective_rank(r['singular_values']):.1f}" for r in sv)
                       + (("; of P - P0 (what training added): " + ", ".join(f"{effective_rank(d):.1f}" for d in delta)) if delta else "")
                       + ".  Shaded: the singular values above 1% of the largest, the directions P actually uses (the paper's Figure 3)."))
        blocks.append(("img", "spectrum.png"))
    blocks += _projector_blocks(run_dir)
    if info:
        blocks.append(("md", f"predictions of {info['checkpoint']} (after epoch {info['epoch']}): {_metrics_text(info['metrics'], info.get('num_classes'))}"))
        blocks.append(("img", "predictions.png"))
    dep_blocks, dep_made = _deployment_blocks(run_dir, task.primary_metric)
    blocks += dep_blocks
    made += dep_made
    d = cfg.distill
    title = f"edgekd run {run_dir.name}: {cfg.model.task}, {cfg.model.student}, teacher {d.teacher}" + (
        f" ({d.method}, {d.projection})" if d.teacher != "none" else "") + (f", spectral r={d.spectral}" if d.spectral else "")
    made += list(_page(run_dir, title, blocks))
    return made


def report_compare(out: Path) -> list[Path]:
    from .compare import collect, differences, write_differences, write_tables
    from .plots import plot_compare, plot_compare_spectra, plot_forest

    from ..config import RunConfig

    meta = json.loads((out / "compare.json").read_text())
    task = RunConfig.from_dict(meta["config"]).model.task
    rows = collect(out)
    if not rows:
        raise EdgekdError(f"{out} has no finished runs yet; run (or restart) edgekd compare with --out {out}")
    md_path, csv_path = write_tables(out, rows, task)
    diff_paths = write_differences(out, rows, task)
    made = [md_path, csv_path, *diff_paths]
    blocks = [("rich", md_path.read_text()), ("rich", "## Differences\n\n" + diff_paths[0].read_text())]
    for fn, name in ((lambda: plot_forest(out, differences(rows, task), task), "forest.png"),
                     (lambda: plot_compare(out, rows, task), "compare.png"), (lambda: plot_compare_spectra(out, rows), "spectra.png")):
        p = fn()
        if p:
            made.append(p)
            blocks.append(("img", name))
    made += list(_page(out, f"edgekd compare: {task}, {len(rows)} runs", blocks))
    return made


def report(path) -> list[Path]:
    p = Path(path).expanduser()
    if (p / "compare.json").exists():
        return report_compare(p)
    if (p / "config.json").exists():
        return report_run(p)
    raise EdgekdError(f"{p} is neither a run directory (config.json) nor a comparison (compare.json); give one written by edgekd")
