"""Batch-1 latency of several models on this machine, timed in interleaved rounds.

    python benchmarks/export/latency_rounds.py runs/x/best.pt runs/x/model.onnx [--rounds 3 --min-time 3]

A ``.pt`` runs on the PyTorch reference backend, an ``.onnx`` on ONNX Runtime CPU.  Each round
times every model once (edgekd's bench loop: warm-up, then >= 50 runs and >= min-time seconds);
the median over rounds is reported with the ratio to the first model, because this machine's
speed drifts between minutes.
"""

import argparse
import json

import numpy as np

from edgekd.bench.run import run_bench


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=3.0)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    p50 = {m: [] for m in a.models}
    env = {}
    for _ in range(a.rounds):
        for m in a.models:
            backend = "torch" if m.endswith(".pt") else "ort-cpu"
            r = run_bench(m, backend=backend, min_iters=50, min_time=a.min_time, accuracy_check=False, show_progress=False)
            p50[m].append(r["latency"]["batch1"]["p50_ms"])
            env[m] = {k: r["environment"].get(k) for k in ("runtime", "threads", "cpu", "cores")}
    base = float(np.median(p50[a.models[0]]))
    print("| model | runtime | threads | p50 ms (median of rounds) | rounds | ratio to first |")
    print("|---|---|---|---|---|---|")
    rows = []
    for m in a.models:
        med = float(np.median(p50[m]))
        rows.append({"model": m, **env[m], "p50_ms": med, "rounds": p50[m], "ratio_to_first": base / med})
        print(f"| {m} | {env[m]['runtime']} | {env[m]['threads']} | {med:.2f} | {', '.join(f'{x:.2f}' for x in p50[m])} | {base / med:.2f}x |")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
