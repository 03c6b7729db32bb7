"""fp32 vs post-training INT8 vs INT8 + float fallback vs QAD on one trained edgekd run (benchmarks/int8/int8.md).

    python benchmarks/int8/int8_recovery.py RUN [--calib-size 8] [--calib-method minmax] [--eval-size 64]
        [--budget 0.005] [--sensitivity-units 64] [--qad-seeds 0 1 2] [--qad-epochs 2] [--rounds 5] [--json results/int8_recovery.json]

Every variant is made with edgekd's own commands (export / distill --qat-from) and judged on the same
validation images against the *source* run's fp32 graph; latency is timed in interleaved rounds
(every file once per round, ONNX Runtime CPU, batch 1), the median over rounds reported.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from edgekd.export import run_export
from edgekd.export.int8_fallback import p50_latency_ms
from edgekd.export.job import load_job, ExportOptions
from edgekd.bench.evaluate import validation_batch
from edgekd.export.onnx_export import evaluate_onnx


def export_int8(run: Path, name: str, a, **kw) -> dict:
    """edgekd export RUN --precision int8 with the benchmark's calibration; the file copied to ``name``."""
    try:
        rep = run_export(run, "onnx", "int8", calib_size=a.calib_size, calib_method=a.calib_method, eval_size=a.eval_size, log=lambda s: None, **kw)
        rec = rep["int8"]
    except Exception as e:  # exit 2: the budget was not met; the record is in export.json
        rec = json.loads((run / "export.json").read_text())["int8"]
        print(f"{name}: {str(e)[:160]}")
    src = Path(rec["onnx"])
    shutil.copyfile(src, run / name)
    return rec


def qad(run: Path, seed: int, epochs: int) -> Path:
    from click.testing import CliRunner

    from edgekd.cli import cli

    out = run / f"qat-seed{seed}"
    args = ["distill", "--qat-from", str(run), "--epochs", str(epochs), "--seed", str(seed), "--workers", "0", "--out", str(out),
            "--overwrite", "--quiet"]
    res = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--calib-size", type=int, default=8)
    ap.add_argument("--calib-method", default="minmax")
    ap.add_argument("--eval-size", type=int, default=64)
    ap.add_argument("--budget", type=float, default=0.005)
    ap.add_argument("--max-float-nodes", type=int, default=10)
    ap.add_argument("--sensitivity-units", type=int, default=64)
    ap.add_argument("--qad-seeds", type=int, nargs="*", default=[0])
    ap.add_argument("--qad-epochs", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--json", default="int8_recovery.json")
    a = ap.parse_args()
    run = a.run
    run_export(run, "onnx", "fp32", log=lambda s: None)
    files = {"fp32": run / "model.onnx"}
    su = {"sensitivity_units": a.sensitivity_units}
    recs = {"ptq": export_int8(run, "bench.ptq.onnx", a, max_drop=1.0, max_float_nodes=0),
            "ptq+fallback": export_int8(run, "bench.fallback.onnx", a, max_drop=a.budget, max_float_nodes=a.max_float_nodes, **su)}
    files.update({"ptq": run / "bench.ptq.onnx", "ptq+fallback": run / "bench.fallback.onnx"})
    for seed in a.qad_seeds:
        out = qad(run, seed, a.qad_epochs)
        recs[f"qad seed {seed}"] = export_int8(out, "bench.qad.onnx", a, max_drop=1.0, max_float_nodes=0)
        files[f"qad seed {seed}"] = out / "bench.qad.onnx"
    job = load_job(run, ExportOptions(eval_size=a.eval_size), log=lambda s: None)
    x, samples = validation_batch(job.cfg, job.task, a.eval_size)
    key = job.task.primary_metric
    metrics = {name: evaluate_onnx(f, job.task, x, samples) for name, f in files.items()}
    lat = [p50_latency_ms(files, x[:1], rounds=1, min_time=a.min_time) for _ in range(a.rounds)]
    rows = []
    for name, f in files.items():
        p50 = float(np.median([r[name] for r in lat]))
        ratio = [r["fp32"] / r[name] for r in lat]
        rows.append({"variant": name, key: metrics[name][key], "drop": metrics["fp32"][key] - metrics[name][key], "p50_ms": p50,
                     "speedup_median": float(np.median(ratio)), "speedup_range": [float(min(ratio)), float(max(ratio))],
                     "mb": f.stat().st_size / 1e6, "float_nodes": (recs.get(name) or {}).get("float_nodes", [])})
    print(f"| variant | {key} | drop vs fp32 | p50 ms | speed-up vs fp32 (median, range over {a.rounds} rounds) | MB | float nodes |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r[key]:.4f} | {r['drop']:+.4f} | {r['p50_ms']:.2f} | {r['speedup_median']:.2f}x "
              f"({r['speedup_range'][0]:.2f}-{r['speedup_range'][1]:.2f}) | {r['mb']:.2f} | {len(r['float_nodes'])} |")
    Path(a.json).write_text(json.dumps({"run": str(run), "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()},
                                        "eval_images": len(x), "rows": rows, "records": recs, "latency_rounds": lat}, indent=2, default=str))


if __name__ == "__main__":
    main()
