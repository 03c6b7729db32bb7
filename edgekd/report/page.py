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


def report_run(run_dir: Path, predictions: bool = True) -> list[Path]:
    from .plots import effective_rank, plot_curves, plot_predictions, plot_spectrum

    cfg = json.loads((run_dir / "config.json").read_text())
    from ..tasks import create_task

    task = create_task(cfg["model"]["task"], num_classes=2)
    made, blocks = [], []
    metrics = read_jsonl(run_dir / "metrics.jsonl")
    if metrics:
        last = {k: v for k, v in metrics[-1].items() if not k.startswith("train_")}
        blocks.append(("md", "final validation metrics: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in last.items())))
    p = plot_curves(run_dir, task.primary_metric)
    if p:
        made.append(p)
        blocks.append(("img", "curves.png"))
    if (run_dir / "spectrum.jsonl").exists():
        plot_spectrum(run_dir)
        sv = read_jsonl(run_dir / "spectrum.jsonl")
        made.append(run_dir / "report" / "spectrum.png")
        blocks.append(("md", "effective rank of P per epoch: " + ", ".join(f"{effective_rank(r['singular_values']):.1f}" for r in sv)))
        blocks.append(("img", "spectrum.png"))
    if predictions and ((run_dir / "best.pt").exists() or (run_dir / "last.pt").exists()):
        made.append(plot_predictions(run_dir))
        blocks.append(("img", "predictions.png"))
    d = cfg["distill"]
    title = f"edgekd run {run_dir.name}: {cfg['model']['task']}, {cfg['model']['student']}, teacher {d['teacher']}" + (
        f" ({d['method']}, {d['projection']})" if d["teacher"] != "none" else "") + (f", spectral r={d['spectral']}" if d["spectral"] else "")
    made += list(_page(run_dir, title, blocks))
    return made


def report_compare(out: Path) -> list[Path]:
    from .compare import collect, differences, plot_forest, write_differences, write_tables
    from .plots import plot_compare, plot_compare_spectra

    meta = json.loads((out / "compare.json").read_text())
    task = meta["config"]["model"]["task"]
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
