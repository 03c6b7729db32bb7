"""LiteRT (XNNPACK) vs ONNX Runtime (CPU provider) on this CPU, fp32 and INT8, timed in interleaved rounds (torch-free).

    python benchmarks/export/litert_rounds.py RUN [RUN ...] [--rounds 5 --min-time 2 --threads 2] [--json results/litert_rounds_cpu.json]

Each RUN is a run directory exported with ``edgekd export RUN --format litert --precision int8``: it holds
model.onnx and model.int8.onnx (ONNX Runtime: fp32, u8s8 QDQ) and model.tflite and model.int8.tflite
(LiteRT: fp32, full-integer int8).  Every round times every (run, precision, runtime) once with edgekd's
bench loop (warm-up >= 10 runs and >= 0.2 s, then >= 50 runs and >= min-time s), in an order rotated each
round; the ratio ORT p50 / LiteRT p50 is taken within each round and its median and range over rounds are
reported, because a shared machine's speed drifts between minutes.  Both runtimes get the same NCHW
input; LiteRT's layout transpose and int8 (de)quantisation are timed apart (``io``) and its interpreter
alone is ``compute``: the script reports both ratios.  It also reports how far LiteRT's outputs are from
ONNX Runtime's on 4 validation scenes (fp32 and int8 files), and the median CPU time of one inference
(``time.process_time``, all threads): on a machine shared with other work, wall time is mostly the wait for a core.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from edgekd.bench.evaluate import input_batch, open_samples
from edgekd.bench.run import run_bench
from edgekd.bench.runners import create_runner
from edgekd.tasks import create_task

FILES = {("fp32", "onnxruntime"): "model.onnx", ("int8", "onnxruntime"): "model.int8.onnx",
         ("fp32", "litert"): "model.tflite", ("int8", "litert"): "model.int8.tflite"}
BACKENDS = {"onnxruntime": "ort-cpu", "litert": "litert"}


def timed(path: Path, runtime: str, threads: int, min_time: float) -> dict:
    res = run_bench(path, backend=BACKENDS[runtime], threads=threads, min_iters=50, min_time=min_time, accuracy_check=False,
                    show_progress=False, log=lambda *_: None)
    b1 = res["latency"]["batch1"]
    return {"p50_ms": b1["p50_ms"], "compute_p50_ms": b1["stages_p50_ms"].get("compute"), "cpu_p50_ms": cpu_time(path, runtime, threads),
            "runtime": res["environment"].get("runtime")}


def cpu_time(path: Path, runtime: str, threads: int, runs: int = 50) -> float:
    """Median CPU time of one inference (all of the process's threads), in ms.  On a machine shared by many
    processes wall-clock time mostly measures the wait for a core; CPU time measures the work."""
    import time

    with create_runner(BACKENDS[runtime], path, threads=threads) as r:
        x = np.random.default_rng(0).standard_normal((1, *r.input_shape()[1:])).astype(np.float32)
        for _ in range(10):
            r.infer(x)
        t = []
        for _ in range(runs):
            c0 = time.process_time()
            r.infer(x)
            t.append(time.process_time() - c0)
    return float(np.median(t) * 1e3)


def output_gap(run: Path, precision: str, threads: int) -> float:
    """max |LiteRT - ONNX Runtime| / max |ONNX Runtime| on 4 validation scenes (each runtime's own file of that precision)."""
    with create_runner("ort-cpu", run / FILES[(precision, "onnxruntime")], threads=threads) as ort:
        hw = ort.input_shape()[2:]
        task = create_task(ort.metadata()["task"])
        x = input_batch(task, list(open_samples("synthetic", "val", hw, 4, 0, "auto", task)))
        ya = ort.infer(x)[0]
    with create_runner("litert", run / FILES[(precision, "litert")], threads=threads) as lite:
        yb = lite.infer(x)[0]
    return float(np.abs(ya - yb).max() / max(np.abs(ya).max(), 1e-12))


def rounds(runs: list[Path], a) -> dict:
    jobs = [(r.name, p, rt) for r in runs for p in ("fp32", "int8") for rt in BACKENDS]
    by_name = {r.name: r for r in runs}
    got = {j: [] for j in jobs}
    for k in range(a.rounds):
        start = k % len(jobs)
        for j in jobs[start:] + jobs[:start]:  # rotated: no job always runs first, or right after the same one
            name, p, rt = j
            got[j].append(timed(by_name[name] / FILES[(p, rt)], rt, a.threads, a.min_time))
        print(f"round {k + 1}/{a.rounds} done", flush=True)
    return got


def ratio(got, num, den, key="p50_ms") -> dict:
    r = np.array([x[key] for x in got[num]]) / np.array([x[key] for x in got[den]])
    return {"median": float(np.median(r)), "min": float(r.min()), "max": float(r.max())}


def report(runs: list[Path], got: dict, a) -> dict:
    med = lambda j, key="p50_ms": float(np.median([x[key] for x in got[j]]))  # noqa: E731
    print(f"\n{a.rounds} interleaved rounds, {a.threads} threads, >= {a.min_time} s per timing")
    print("| run | precision | ORT p50 ms | LiteRT p50 ms | speed-up ORT/LiteRT, wall (per round) | compute only | ORT CPU ms | LiteRT CPU ms "
          "| speed-up, CPU time (per round) | output gap |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for r in runs:
        for p in ("fp32", "int8"):
            o, lt = (r.name, p, "onnxruntime"), (r.name, p, "litert")
            s, c, gap = ratio(got, o, lt), ratio(got, o, lt, "compute_p50_ms"), output_gap(r, p, a.threads)
            u = ratio(got, o, lt, "cpu_p50_ms")
            rows.append({"run": r.name, "precision": p, "ort_p50_ms": med(o), "litert_p50_ms": med(lt), "litert_compute_p50_ms": med(lt, "compute_p50_ms"),
                         "ort_cpu_ms": med(o, "cpu_p50_ms"), "litert_cpu_ms": med(lt, "cpu_p50_ms"), "speedup": s, "speedup_compute": c,
                         "speedup_cpu": u, "output_gap": gap, "ort_rounds": got[o], "litert_rounds": got[lt]})
            print(f"| {r.name} | {p} | {med(o):.2f} | {med(lt):.2f} | {s['median']:.2f}x ({s['min']:.2f}-{s['max']:.2f}) | {c['median']:.2f}x "
                  f"| {med(o, 'cpu_p50_ms'):.2f} | {med(lt, 'cpu_p50_ms'):.2f} | {u['median']:.2f}x ({u['min']:.2f}-{u['max']:.2f}) | {gap:.1e} |")
    print("\n| run | runtime | INT8 speed-up over fp32, wall (per round) | CPU time (per round) |")
    print("|---|---|---|---|")
    for r in runs:
        for rt in BACKENDS:
            s = ratio(got, (r.name, "fp32", rt), (r.name, "int8", rt))
            u = ratio(got, (r.name, "fp32", rt), (r.name, "int8", rt), "cpu_p50_ms")
            rows.append({"run": r.name, "runtime": rt, "int8_speedup": s, "int8_speedup_cpu": u})
            print(f"| {r.name} | {rt} | {s['median']:.2f}x ({s['min']:.2f}-{s['max']:.2f}) | {u['median']:.2f}x ({u['min']:.2f}-{u['max']:.2f}) |")
    env = {rt: next(x["runtime"] for j, v in got.items() if j[2] == rt for x in v) for rt in BACKENDS}
    return {"env": env, "threads": a.threads, "rounds": a.rounds, "min_time": a.min_time, "rows": rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    missing = [str(r / f) for r in a.runs for f in FILES.values() if not (r / f).exists()]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)}: export each run with edgekd export RUN --format litert --precision int8")
    out = report(a.runs, rounds(a.runs, a), a)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))
        print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
