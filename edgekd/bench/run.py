"""``edgekd bench``: latency and accuracy of an exported model on this device (torch-free).

Warm-up by time and count, then runs until both a minimum count and a minimum
time are reached; latency statistics per batch size; the task's metrics on
validation data next to the fp32 reference stored in the model's metadata; the
target's latency budget as pass/fail (on p90 at batch 1).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np

from ..errors import EdgekdError
from .stats import latency_stats


def _progress(total, desc, enabled=True):
    try:
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=desc, unit="it", disable=not enabled, dynamic_ncols=True, leave=False)
    except ImportError:  # the bench must run with numpy + onnxruntime alone
        class _Null:
            def update(self, n=1):
                pass

            def close(self):
                pass

        return _Null()


def model_kind(path: Path) -> str:
    if not path.exists():
        raise EdgekdError(f"model file {path} does not exist; export one with: edgekd export runs/<run>")
    if path.is_dir():
        raise EdgekdError(f"{path} is a directory; give the model file (for example {path / 'model.onnx'})")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix in (".engine", ".plan", ".trt"):
        return "engine"
    if suffix in (".pt", ".pth"):
        return "torch"
    raise EdgekdError(f"{path}: unknown model type {suffix or '(no suffix)'}; give a .onnx file, a TensorRT .engine, or an edgekd .pt checkpoint")


# What each kind of model file is called in messages: as a backend's input, and as the file given.
_FILE_NEEDED = {"onnx": "an ONNX model", "engine": "a .engine file", "torch": "a .pt file"}
_FILE_GIVEN = {"onnx": "an ONNX model", "engine": "a TensorRT engine", "torch": "a .pt checkpoint"}


def pick_backend(kind: str, requested: str, target: dict | None) -> str:
    """The registered backend that runs a ``kind`` file: ``auto`` asks the target (runners.base.auto_backend)."""
    from .runners import auto_backend, backend_class, list_backends

    if requested == "auto":
        return auto_backend(kind, target)
    cls = backend_class(requested)
    if cls.model_kind != kind:
        if kind == "onnx":
            raise EdgekdError(f"--backend {requested} needs {_FILE_NEEDED[cls.model_kind]}, not an ONNX model")
        raise EdgekdError(f"{_FILE_GIVEN[kind]} runs only with --backend {' or '.join(list_backends(kind))} (got {requested})"
                          + ("; export it to ONNX first" if kind == "torch" else ""))
    return cls.name


def make_runner(path: Path, kind: str, backend: str, threads: int, precision: str):
    """An open runner of ``backend`` for ``path`` (close it, or use it as a context manager)."""
    from .runners import create_runner

    return create_runner(backend, path, threads=threads, precision=precision).open()


def model_metadata(runner, kind: str, path: Path) -> dict:
    meta = runner.metadata()
    if "task" not in meta:
        raise EdgekdError(f"{path} carries no edgekd metadata (task, input size, normalisation); export it with edgekd export")
    return meta


def input_hw(runner, kind: str, meta: dict) -> tuple[int, int]:
    shape = runner.input_shape()
    if shape:
        if len(shape) != 4 or shape[1] != 3:
            raise EdgekdError(f"model input has shape {shape}; edgekd bench expects (batch, 3, H, W)")
        if isinstance(shape[2], int) and isinstance(shape[3], int):
            return shape[2], shape[3]
    s = json.loads(meta.get("input_shape", "[]"))
    if len(s) != 4:
        raise EdgekdError("the model's metadata has no input shape; export it with edgekd export")
    return int(s[2]), int(s[3])


def timed_loop(runner, x, warmup_iters, warmup_time, min_iters, min_time, desc, show, pre_fn=None):
    """Warm up (>= warmup_iters and >= warmup_time), then run until >= min_iters and >= min_time."""
    t_start = time.perf_counter()
    n = 0
    while n < warmup_iters or time.perf_counter() - t_start < warmup_time:
        runner.infer(x)
        n += 1
    lat, parts = [], {}
    bar = _progress(min_iters, desc, show)
    t_start = time.perf_counter()
    while len(lat) < min_iters or time.perf_counter() - t_start < min_time:
        if pre_fn is not None:
            t0 = time.perf_counter()
            pre_fn()
            parts.setdefault("preprocess", []).append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        _, timing = runner.infer(x)
        lat.append(time.perf_counter() - t0)
        for k, v in timing.items():
            parts.setdefault(k, []).append(v)
        if len(lat) <= min_iters:
            bar.update(1)
    bar.close()
    return lat, {k: float(np.median(v) * 1e3) for k, v in parts.items()}


def accuracy(runner, task, data, data_format, n, seed, hw, batch, show, direction="AtoB") -> dict:
    from ..data import open_dataset
    from ..data.transforms import normalise, resize_sample

    ds = open_dataset(data, "val", hw, n, seed, data_format, task=task.name, direction=direction)
    n = min(n, len(ds))
    acc = task.metrics()
    bar = _progress(n, "accuracy", show)
    for i in range(0, n, batch):
        samples = [resize_sample(ds[j], *hw) for j in range(i, min(n, i + batch))]
        x = np.stack([normalise(task.input_image(s)) for s in samples]).astype(np.float32)
        out, _ = runner.infer(x)
        acc.update(out, np.stack([np.asarray(task.target(s)) for s in samples]))
        bar.update(len(samples))
    bar.close()
    return {"images": n, "data": data, "metrics": {k: v for k, v in acc.compute().items() if not isinstance(v, list)}}


def _check_bench_numbers(**values) -> None:
    """Counts and times that cannot be measured with: refused before any model is loaded (0 is not 'the default')."""
    least = {"val_size": 1, "batch": 1, "threads": 1, "min_iters": 1, "min_time": 0, "warmup_iters": 0, "warmup_time": 0}
    for name, v in values.items():
        if v is not None and v < least[name]:
            raise EdgekdError(f"--{name.replace('_', '-')} {v}: use at least {least[name]}")


def run_bench(model, profile=None, target=None, backend=None, data=None, data_format=None, val_size=None, batch=None,
              threads=None, min_iters=None, min_time=None, warmup_iters=None, warmup_time=None, accuracy_check=True,
              show_progress=True, log=print) -> dict:
    from ..config import load_profile, load_target
    from ..tasks import create_task

    _check_bench_numbers(val_size=val_size, batch=batch, threads=threads, min_iters=min_iters, min_time=min_time,
                         warmup_iters=warmup_iters, warmup_time=warmup_time)
    path = Path(model).expanduser()
    kind = model_kind(path)
    cfg = load_profile(profile) if profile else None
    tgt = load_target(target) if target else (cfg["target"] if cfg else None)
    bc = (cfg or {}).get("bench") or {}
    backend = pick_backend(kind, backend or bc.get("backend", "auto"), tgt)
    threads = threads if threads is not None else min((tgt or {}).get("threads", os.cpu_count() or 1), os.cpu_count() or 1)
    runner = make_runner(path, kind, backend, threads, "fp32")
    meta = model_metadata(runner, kind, path)
    if tgt is None and meta.get("target"):
        try:
            tgt = load_target(meta["target"])
        except EdgekdError:
            tgt = None
    hw = input_hw(runner, kind, meta)
    if cfg is not None and tuple(cfg["data"]["image_size"]) != tuple(hw):
        ph, pw = cfg["data"]["image_size"]
        raise EdgekdError(
            f"{path.name} takes 3x{hw[0]}x{hw[1]} input but profile {cfg['profile']['name']} expects {ph}x{pw}; bench with the "
            f"profile it was trained with (--profile {meta.get('profile', '?')}) or train and export at {ph}x{pw}"
        )
    task = create_task(meta["task"], **json.loads(meta.get("task_args", "{}") or "{}"))
    ref_eval = json.loads(meta.get("reference_eval", "{}") or "{}")
    data = data or ref_eval.get("data", "synthetic")
    data_format = data_format or ref_eval.get("data_format", "auto")
    seed = int(ref_eval.get("seed", 0))
    val_size = val_size if val_size is not None else int(ref_eval.get("n", 64))

    from ..data import open_dataset
    from ..data.transforms import normalise, resize_sample

    direction = ref_eval.get("direction", "AtoB")
    sample = resize_sample(open_dataset(data, "val", hw, 1, seed, data_format, task=task.name, direction=direction)[0], *hw)
    x1 = normalise(task.input_image(sample))[None].astype(np.float32)
    settings = {"warmup_iters": warmup_iters if warmup_iters is not None else bc.get("warmup_iters", 10),
                "warmup_time": warmup_time if warmup_time is not None else bc.get("warmup_time", 0.2),
                "min_iters": min_iters if min_iters is not None else bc.get("min_iters", 100), "min_time": min_time if min_time is not None else bc.get("min_time", 2.0)}
    settings["warmup_iters"] = max(settings["warmup_iters"], 10)  # DESIGN.md §5: >= 200 ms and >= 10 runs
    settings["warmup_time"] = max(settings["warmup_time"], 0.2)
    batches = sorted({1, int(batch if batch is not None else bc.get("batch", 1))})
    results = {"model": str(path), "kind": kind, "precision": meta.get("precision", "fp32"), "task": task.name,
               "input": [3, *hw], "settings": settings, "latency": {}}
    for b in batches:
        xb = np.repeat(x1, b, axis=0)
        lat, parts = timed_loop(runner, xb, desc=f"latency batch {b}", show=show_progress,
                                pre_fn=lambda: normalise(task.input_image(sample)), **settings)
        results["latency"][f"batch{b}"] = {"batch": b, **latency_stats(lat, b), "stages_p50_ms": parts}
    budget = float((tgt or {}).get("latency_budget_ms") or 0.0)
    if budget:
        p90 = results["latency"]["batch1"]["p90_ms"]
        results["budget"] = {"target": tgt["name"], "latency_budget_ms": budget, "p90_ms": p90, "pass": p90 <= budget}
    if accuracy_check:
        acc = accuracy(runner, task, data, data_format, val_size, seed, hw, runner.accuracy_batch, show_progress, direction)
        ref = json.loads(meta.get("reference_metrics", "{}") or "{}")
        acc["reference_fp32"] = ref
        acc["primary_metric"] = task.primary_metric
        if task.primary_metric in ref:
            acc["delta_vs_reference"] = acc["metrics"][task.primary_metric] - ref[task.primary_metric]
        results["accuracy"] = acc
    from .environment import environment

    results["environment"] = environment(runner)
    results["environment"]["precision"] = results["precision"]
    results["environment"]["target"] = (tgt or {}).get("name")
    runner.close()
    return results


def format_table(r: dict) -> str:
    env = r["environment"]
    lines = [f"edgekd bench: {r['model']} ({r['task']}, {r['precision']}, input {'x'.join(map(str, r['input']))})",
             f"  {env.get('backend')} on {env.get('cpu')} ({env.get('cores')} cores, {env.get('threads')} threads)"
             + (f", GPU {env['gpu']}" if env.get("gpu") else "") + f"; {env.get('runtime')}", ""]
    hdr = f"{'batch':>5} {'iters':>6} {'min':>8} {'p50':>8} {'p90':>8} {'p95':>8} {'p99':>8} {'max':>8} {'mean':>8} {'cv':>6} {'img/s':>9}"
    lines += [hdr + "   (ms)", "-" * len(hdr)]
    for v in r["latency"].values():
        lines.append(f"{v['batch']:>5} {v['iters']:>6} {v['min_ms']:>8.2f} {v['p50_ms']:>8.2f} {v['p90_ms']:>8.2f} {v['p95_ms']:>8.2f} "
                     f"{v['p99_ms']:>8.2f} {v['max_ms']:>8.2f} {v['mean_ms']:>8.2f} {v['cv']:>6.3f} {v['throughput_ips']:>9.1f}")
    stages = r["latency"]["batch1"].get("stages_p50_ms", {})
    if stages:
        lines.append("  stages at batch 1 (p50 ms): " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()))
    if "budget" in r:
        b = r["budget"]
        lines.append(f"  budget of {b['target']}: p90 {b['p90_ms']:.2f} ms vs {b['latency_budget_ms']:.1f} ms -> {'PASS' if b['pass'] else 'FAIL'}")
    if "accuracy" in r:
        a = r["accuracy"]
        lines += ["", f"accuracy on {a['images']} validation images ({a['data']}):", f"  {'metric':<10} {'this':>9} {'fp32 ref':>9}"]
        for k, v in a["metrics"].items():
            ref = a["reference_fp32"].get(k)
            lines.append(f"  {k:<10} {v:>9.4f} {('%9.4f' % ref) if ref is not None else '        -'}")
    return "\n".join(lines)
