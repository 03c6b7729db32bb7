"""OpenVINO vs ONNX Runtime on this CPU, fp32 and INT8, timed in interleaved rounds.

    python benchmarks/export/openvino_rounds.py [--students mobilenetv2_100,efficientnet_b0] [--profile mobile]
                                         [--rounds 5 --min-time 3 --threads 2] [--out /tmp/ov-rounds]

For each student (untrained: latency does not depend on the weights) at the profile's input size it
exports the fp32 ONNX file with edgekd's exporter and the INT8 QDQ file with edgekd's CPU path (u8s8,
per-channel, min-max calibration on 16 training scenes: percentile calibration fails on an untrained
network, whose dead activations give zero-width histograms; the ranges change the numbers, not the graph); then every round times every
(student, precision, runtime) once with edgekd's bench loop (warm-up >= 10 runs and >= 0.2 s, then
>= 50 runs and >= min-time s), the order rotated each round.  Ratios are taken within a round and the
median over rounds is reported, because a shared machine's speed drifts between minutes.  It also
reports how far OpenVINO's outputs are from ONNX Runtime's on 4 validation scenes (same file).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edgekd.bench.run import run_bench
from edgekd.bench.runners import create_runner
from edgekd.config import load_profile
from edgekd.bench.evaluate import validation_batch
from edgekd.export.quantize import quantize_int8
from edgekd.fit import Candidate, Exporter, _task_for, candidate_config

RUNTIMES = {"onnxruntime": "ort-cpu", "openvino": "openvino"}


def export_pair(cfg, student, out) -> dict:
    size = tuple(cfg["data"]["image_size"])
    fp32 = Path(Exporter(cfg, out, symmetric=False).export(Candidate(student, size, "fp32"))["onnx"])
    c = candidate_config(cfg, Candidate(student, size, "int8"))
    task, _ = _task_for(c)
    int8 = fp32.with_name(f"{student}.int8.onnx")
    quantize_int8(fp32, int8, validation_batch(c, task, 16, split="train")[0], symmetric=False, method="minmax")
    return {"fp32": str(fp32), "int8": str(int8), "x": validation_batch(c, task, 4)[0]}


def output_gap(path, x, threads) -> float:
    """max |OpenVINO - ONNX Runtime| / max |ONNX Runtime| on the same inputs."""
    with create_runner("ort-cpu", path, threads=threads) as a, create_runner("openvino", path, threads=threads) as b:
        ya, yb = a.infer(x)[0], b.infer(x)[0]
    return float(np.abs(ya - yb).max() / max(np.abs(ya).max(), 1e-12))


def ov_runtime_ops(path, threads) -> dict:
    """What OpenVINO's CPU plugin runs for ``path``: counts of (layer type, runtime precision) in the compiled graph."""
    import collections

    import openvino as ov

    compiled = ov.Core().compile_model(path, "CPU", {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"})
    count = collections.Counter()
    for op in compiled.get_runtime_model().get_ordered_ops():
        ri = op.get_rt_info()
        if "layerType" in ri and ri["layerType"].astype(str) not in ("Const", "Input", "Output"):
            count[f"{ri['layerType'].astype(str)}:{ri['runtimePrecision'].astype(str)}"] += 1
    return dict(count.most_common())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--students", default="mobilenetv2_100,efficientnet_b0")
    ap.add_argument("--profile", default="mobile")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=3.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="/tmp/ov-rounds")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    cfg = load_profile(a.profile)
    students = [s.strip() for s in a.students.split(",")]
    files = {s: export_pair(cfg, s, Path(a.out) / s) for s in students}
    jobs = [(s, p, rt) for s in students for p in ("fp32", "int8") for rt in RUNTIMES]
    p50 = {j: [] for j in jobs}
    env = {}
    for r in range(a.rounds):
        k = r % len(jobs)
        for j in jobs[k:] + jobs[:k]:  # rotate, so that no job always runs first (or right after another)
            s, p, rt = j
            res = run_bench(files[s][p], backend=RUNTIMES[rt], threads=a.threads, min_iters=50, min_time=a.min_time,
                            accuracy_check=False, show_progress=False)
            p50[j].append(res["latency"]["batch1"]["p50_ms"])
            env[rt] = res["environment"].get("runtime")
        print(f"round {r + 1}/{a.rounds} done", flush=True)
    report(students, p50, files, env, a)


def report(students, p50, files, env, a):
    med = {j: float(np.median(v)) for j, v in p50.items()}

    def ratio(num, den):  # per-round ratio of p50s, median over rounds
        return float(np.median(np.array(p50[num]) / np.array(p50[den])))

    print(f"\n{a.rounds} interleaved rounds, {a.threads} threads, >= {a.min_time} s per timing; {env}")
    print("| student | precision | ONNX Runtime p50 ms | OpenVINO p50 ms | OpenVINO speed-up (ORT/OV) | OV vs ORT output gap |")
    print("|---|---|---|---|---|---|")
    rows = []
    for s in students:
        for p in ("fp32", "int8"):
            o, v = (s, p, "onnxruntime"), (s, p, "openvino")
            gap = output_gap(files[s][p], files[s]["x"], a.threads)
            rows.append({"student": s, "precision": p, "ort_p50_ms": med[o], "ov_p50_ms": med[v], "ov_speedup": ratio(o, v),
                         "ort_rounds": p50[o], "ov_rounds": p50[v], "output_gap": gap})
            print(f"| {s} | {p} | {med[o]:.2f} | {med[v]:.2f} | {ratio(o, v):.2f}x | {gap:.1e} |")
    print("\n| student | runtime | INT8 speed-up over fp32 (fp32/int8) |")
    print("|---|---|---|")
    for s in students:
        for rt in RUNTIMES:
            sp = ratio((s, "fp32", rt), (s, "int8", rt))
            rows.append({"student": s, "runtime": rt, "int8_speedup": sp})
            print(f"| {s} | {rt} | {sp:.2f}x |")
    print("\nOpenVINO's compiled INT8 graphs (layer:runtime precision x count):")
    for s in students:
        ops = ov_runtime_ops(files[s]["int8"], a.threads)
        rows.append({"student": s, "openvino_int8_runtime_ops": ops})
        print(f"  {s}: " + ", ".join(f"{k} x{v}" for k, v in ops.items()))
    if a.json:
        Path(a.json).write_text(json.dumps({"env": env, "threads": a.threads, "rounds": a.rounds, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
