"""INT8 vs fp32 on the CPU: latency (ONNX Runtime, batch 1) and the metric drop, for a trained edgekd ONNX model.

    python benchmarks/export/int8.py MODEL.onnx [--calib 128] [--eval 128] [--json int8.json]

Quantizes MODEL.onnx with edgekd's own INT8 path (static QDQ, per-channel weights) in several
variants, evaluates each on the validation scenes named in the model's metadata, and times each
with edgekd's bench loop.  Prints a table (speed-up and drop against fp32) and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from edgekd.bench.run import run_bench
from edgekd.data import open_dataset
from edgekd.data.transforms import normalise, resize_sample
from edgekd.export.onnx_export import evaluate_onnx
from edgekd.export.quantize import quantize_int8
from edgekd.tasks import create_task

VARIANTS = {
    # name: (symmetric activations, calibration method, keep the head's last conv in float)
    "u8s8-minmax": (False, "minmax", True),
    "s8s8-minmax (TensorRT style)": (True, "minmax", True),
    "u8s8-percentile": (False, "percentile", True),
    "u8s8-percentile, head int8 too": (False, "percentile", False),
}


def data_for(meta, split, n):
    task = create_task(meta["task"], **json.loads(meta.get("task_args", "{}") or "{}"))
    ev = json.loads(meta["reference_eval"])
    hw = json.loads(meta["input_shape"])[2:]
    ds = open_dataset(ev["data"], split, hw, n, ev["seed"], ev.get("data_format", "auto"))
    samples = [resize_sample(ds[i], *hw, task.sample_keys) for i in range(min(n, len(ds)))]
    x = np.stack([normalise(task.input_image(s)) for s in samples]).astype(np.float32)
    return task, x, samples


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--calib", type=int, default=128)
    ap.add_argument("--eval", type=int, default=128)
    ap.add_argument("--min-time", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", default="int8.json")
    a = ap.parse_args()
    import onnxruntime as ort

    meta = dict(ort.InferenceSession(a.model, providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map)
    task, calib, _ = data_for(meta, "train", a.calib)
    _, x, samples = data_for(meta, "val", a.eval)
    key = task.primary_metric
    tmp = Path(tempfile.mkdtemp(prefix="edgekd-int8-"))
    paths = {"fp32": Path(a.model)}
    for name, (sym, method, keep_head) in VARIANTS.items():
        paths[name] = tmp / (name.split()[0] + ".onnx")
        quantize_int8(a.model, paths[name], calib, sym, method, exclude_last=keep_head)
    rows = [{"variant": n, **{f"m_{k}": v for k, v in evaluate_onnx(p, task, x, samples).items()}, "p50s": [], "p90s": []}
            for n, p in paths.items()]
    # Latency in interleaved rounds: this machine's speed drifts between minutes, so every variant
    # is timed in every round and the median over rounds is reported.
    for _ in range(a.rounds):
        for r in rows:
            lat = run_bench(str(paths[r["variant"]]), backend="ort-cpu", min_iters=50, min_time=a.min_time,
                            accuracy_check=False, show_progress=False)
            r["p50s"].append(lat["latency"]["batch1"]["p50_ms"])
            r["p90s"].append(lat["latency"]["batch1"]["p90_ms"])
            r["threads"], r["cpu"] = lat["environment"]["threads"], lat["environment"]["cpu"]
    for r in rows:
        r["p50_ms"], r["p90_ms"] = float(np.median(r["p50s"])), float(np.median(r["p90s"]))
        print(json.dumps(r), flush=True)
    base = rows[0]
    print(f"\nmodel {a.model}; {len(calib)} calibration (train) and {len(x)} evaluation (val) images; "
          f"ONNX Runtime {ort.__version__}, {base['threads']} threads on {base['cpu']}\n")
    print(f"| variant | p50 ms | p90 ms | speed-up vs fp32 | {key} | drop vs fp32 | abs_rel |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        drop = base[f"m_{key}"] - r[f"m_{key}"]
        print(f"| {r['variant']} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | {base['p50_ms'] / r['p50_ms']:.2f}x | "
              f"{r[f'm_{key}']:.4f} | {drop:+.4f} | {r.get('m_abs_rel', float('nan')):.4f} |")
    Path(a.json).write_text(json.dumps({"model": a.model, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
