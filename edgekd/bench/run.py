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

        import sys

        # In a redirected log a bar writes every update: none there (the table follows).
        return tqdm(total=total, desc=desc, unit="it", disable=not (enabled and sys.stderr.isatty()), dynamic_ncols=True, leave=False)
    except ImportError:  # the bench must run with numpy + onnxruntime alone
        class _Null:
            total = n = 0

            def update(self, n=1):
                pass

            def refresh(self):
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


def model_metadata(runner, kind: str, path: Path, need_task: bool = True) -> dict:
    meta = runner.metadata()
    if "task" not in meta and (need_task or kind != "onnx"):
        raise EdgekdError(f"{path} carries no edgekd metadata (task, input size, normalisation), so its accuracy cannot be judged; "
                          "time it alone with --no-accuracy, or export it with edgekd export")
    return meta


_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64, "tensor(uint8)": np.uint8,
               "tensor(int8)": np.int8, "tensor(int32)": np.int32, "tensor(int64)": np.int64, "tensor(bool)": np.bool_}


def generic_input(runner, path: Path, log=print) -> np.ndarray:
    """A random input for an ONNX model without edgekd metadata (latency only): fixed dims as declared,
    a dynamic batch as 1, a dynamic image size as 224x224 (said in one line)."""
    if not hasattr(runner, "session"):
        raise EdgekdError(f"{path.name} carries no edgekd metadata; time a third-party model with an onnxruntime backend (--backend ort-cpu)")
    inputs = runner.session.get_inputs()
    if len(inputs) != 1:
        raise EdgekdError(f"{path.name} has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); edgekd bench times single-input models")
    inp = inputs[0]
    if inp.type not in _ORT_DTYPES:
        raise EdgekdError(f"{path.name}: input {inp.name} has type {inp.type}; edgekd bench feeds numeric tensors only")
    dims, guessed = [], []
    for i, d in enumerate(inp.shape):
        if isinstance(d, int) and d > 0:
            dims.append(d)
        elif i == 0:
            dims.append(1)
        elif len(inp.shape) == 4 and i >= 2:
            dims.append(224)
            guessed.append(i)
        else:
            raise EdgekdError(f"{path.name}: input {inp.name} has a dynamic dimension {i} ({d!r}) that edgekd bench cannot guess; "
                              "export the model with a fixed input shape")
    if guessed:
        log(f"note: {path.name} has a dynamic image size; timing it at {dims[2]}x{dims[3]}")
    dtype = _ORT_DTYPES[inp.type]
    rng = np.random.default_rng(0)
    if np.issubdtype(dtype, np.floating):
        return rng.standard_normal(dims).astype(dtype)
    if dtype == np.uint8:
        return rng.integers(0, 256, dims, dtype=np.uint8)
    return np.zeros(dims, dtype=dtype)


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
    # The run stops at >= min_iters *and* >= min_time: size the bar by both (from the warm-up's pace).
    per_iter = (time.perf_counter() - t_start) / max(n, 1)
    bar = _progress(max(min_iters, int(min_time / per_iter) if per_iter > 0 else 0), desc, show)
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
        if len(lat) > bar.total:
            bar.total = len(lat)
        bar.update(1)
    bar.total = len(lat)  # ends at the count actually timed
    bar.refresh()
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


def _machine_arch() -> str:
    import platform

    m = platform.machine().lower()
    return {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}.get(m, m)


def on_target(tgt: dict, runner, backend: str) -> tuple[bool, str]:
    """Is this run on the target's kind of hardware?  A budget verdict means something only there."""
    gpu_backend = backend in ("ort-cuda", "ort-tensorrt", "tensorrt") or (
        backend == "torch" and any("cuda" in str(p) for p in runner.describe().get("providers") or []))
    arch, want = _machine_arch(), (tgt.get("arch") or "").lower()
    if want and arch != want:
        return False, f"this machine is {arch}, {tgt['name']} is {want}"
    if tgt.get("accelerator") == "cuda" and not gpu_backend:
        return False, f"{tgt['name']} runs on its CUDA GPU, this bench ran on the CPU ({backend})"
    if tgt.get("accelerator") == "cpu" and gpu_backend:
        return False, f"{tgt['name']} runs on its CPU, this bench ran on a GPU ({backend})"
    return True, ""


def _say_fallback(requested: str, picked: str, tgt: dict | None, log) -> None:
    """``auto`` took a backend other than the target's first choice: say so in one line."""
    from .runners import providers_by_backend

    wanted = (tgt or {}).get("providers") or []
    by_provider = {v: k for k, v in providers_by_backend().items()}
    first = next((by_provider[p] for p in wanted if p in by_provider), None)
    if requested == "auto" and first and picked != first:
        names = [by_provider[p] for p in wanted if p in by_provider]
        skipped = names[: names.index(picked)] if picked in names else names
        log(f"backend auto: {', '.join(skipped)} not available on this machine; using {picked}")


def _sample_input(task, data, data_format, hw, seed, direction, accuracy_check, log):
    """One validation sample for the latency runs.  Without the data on this device, the latency-only run
    takes a synthetic scene instead (the graph's cost does not depend on the pixels)."""
    from ..data import open_dataset
    from ..data.transforms import resize_sample

    try:
        return resize_sample(open_dataset(data, "val", hw, 1, seed, data_format, task=task.name, direction=direction)[0], *hw)
    except EdgekdError as e:
        if accuracy_check:
            raise EdgekdError(f"{e} (or time latency alone with --no-accuracy)") from None
        log(f"note: validation data {data} is not available here; timing on a synthetic scene")
        return resize_sample(open_dataset("synthetic", "val", hw, 1, seed, "auto", task=task.name)[0], *hw)


def bench_settings(bc: dict, warmup_iters, warmup_time, min_iters, min_time) -> dict:
    s = {"warmup_iters": warmup_iters if warmup_iters is not None else bc.get("warmup_iters", 10),
         "warmup_time": warmup_time if warmup_time is not None else bc.get("warmup_time", 0.2),
         "min_iters": min_iters or bc.get("min_iters", 100), "min_time": min_time if min_time is not None else bc.get("min_time", 2.0)}
    s["warmup_iters"] = max(s["warmup_iters"], 10)  # DESIGN.md §5: >= 200 ms and >= 10 runs
    s["warmup_time"] = max(s["warmup_time"], 0.2)
    return s


def run_bench(model, profile=None, target=None, backend=None, data=None, data_format=None, val_size=None, batch=None,
              threads=None, min_iters=None, min_time=None, warmup_iters=None, warmup_time=None, accuracy_check=True,
              show_progress=True, log=print) -> dict:
    from ..config import load_profile, load_target

    _check_bench_numbers(val_size=val_size, batch=batch, threads=threads, min_iters=min_iters, min_time=min_time,
                         warmup_iters=warmup_iters, warmup_time=warmup_time)
    path = Path(model).expanduser()
    kind = model_kind(path)
    cfg = load_profile(profile) if profile else None
    tgt = load_target(target) if target else (cfg["target"] if cfg else None)
    bc = (cfg or {}).get("bench") or {}
    requested = backend or bc.get("backend", "auto")
    backend = pick_backend(kind, requested, tgt)
    threads = threads if threads is not None else min((tgt or {}).get("threads", os.cpu_count() or 1), os.cpu_count() or 1)
    runner = make_runner(path, kind, backend, threads, "fp32")
    meta = model_metadata(runner, kind, path, need_task=accuracy_check)
    if tgt is None and meta.get("target"):
        try:
            tgt = load_target(meta["target"])
        except EdgekdError:
            tgt = None
    _say_fallback(requested, backend, tgt, log)
    settings = bench_settings(bc, warmup_iters, warmup_time, min_iters, min_time)
    if "task" in meta:
        results, x1, pre_fn = _edgekd_model(runner, kind, path, meta, cfg, data, data_format, accuracy_check, log)
        results["_eval"]["val_size"] = val_size
    else:  # a third-party ONNX model: latency only, on a random input of its declared shape
        x1, pre_fn = generic_input(runner, path, log), None
        results = {"model": str(path), "kind": kind, "precision": "unknown", "task": None, "input": list(x1.shape[1:])}
    results.update(settings=settings, latency={})
    fixed_batch = x1.shape[0] != 1
    batches = [x1.shape[0]] if fixed_batch else sorted({1, int(batch or bc.get("batch", 1))})
    for b in batches:
        xb = x1 if fixed_batch else np.repeat(x1, b, axis=0)
        lat, parts = timed_loop(runner, xb, desc=f"latency batch {b}", show=show_progress, pre_fn=pre_fn, **settings)
        results["latency"][f"batch{b}"] = {"batch": b, **latency_stats(lat, b), "stages_p50_ms": parts}
    budget = float((tgt or {}).get("latency_budget_ms") or 0.0)
    if budget and "batch1" in results["latency"]:
        p90 = results["latency"]["batch1"]["p90_ms"]
        here, why = on_target(tgt, runner, backend)
        results["budget"] = {"target": tgt["name"], "latency_budget_ms": budget, "p90_ms": p90, "on_target": here,
                             "pass": (p90 <= budget) if here else None, **({} if here else {"why_no_verdict": why})}
    if accuracy_check:
        results["accuracy"] = _accuracy_vs_reference(runner, kind, meta, results.pop("_eval"), show_progress)
    results.pop("_eval", None)
    from .environment import environment

    results["environment"] = environment(runner)
    results["environment"]["precision"] = results["precision"]
    results["environment"]["target"] = (tgt or {}).get("name")
    results["environment"]["arch"] = _machine_arch()
    results["notes"] = _notes(results, meta, tgt)
    runner.close()
    return results


def _edgekd_model(runner, kind, path, meta, cfg, data, data_format, accuracy_check, log):
    """Input, pre-processing and evaluation set-up for a model exported by edgekd (its metadata says how)."""
    from ..data.transforms import normalise
    from ..tasks import create_task

    hw = input_hw(runner, kind, meta)
    if cfg is not None and tuple(cfg["data"]["image_size"]) != tuple(hw):
        ph, pw = cfg["data"]["image_size"]
        # The profile picks the target and the bench settings; the model's own graph fixes its input size.
        log(f"note: {path.name} takes 3x{hw[0]}x{hw[1]} input (profile {cfg['profile']['name']} trains at {ph}x{pw}); timing it at its own size")
    task = create_task(meta["task"], **json.loads(meta.get("task_args", "{}") or "{}"))
    ref_eval = json.loads(meta.get("reference_eval", "{}") or "{}")
    data = data or ref_eval.get("data", "synthetic")
    data_format = data_format or ref_eval.get("data_format", "auto")
    seed = int(ref_eval.get("seed", 0))
    direction = ref_eval.get("direction", "AtoB")
    sample = _sample_input(task, data, data_format, hw, seed, direction, accuracy_check, log)
    x1 = normalise(task.input_image(sample))[None].astype(np.float32)
    results = {"model": str(path), "kind": kind, "precision": _precision(meta, path), "task": task.name, "input": [3, *hw],
               "_eval": {"task": task, "data": data, "data_format": data_format, "seed": seed, "hw": hw, "direction": direction,
                         "n": int(ref_eval.get("n", 64))}}
    return results, x1, lambda: normalise(task.input_image(sample))


def _precision(meta: dict, path: Path) -> str:
    name = path.name.lower()
    for p in ("int8", "fp16"):  # quantisation keeps the fp32 graph's metadata: the file name says what it is
        if f".{p}." in name:
            return p
    return meta.get("precision", "fp32")


def _accuracy_vs_reference(runner, kind, meta, ev, show_progress) -> dict:
    task = ev["task"]
    acc = accuracy(runner, task, ev["data"], ev["data_format"], ev["val_size"] or ev["n"], ev["seed"], ev["hw"],
                   runner.accuracy_batch, show_progress, ev["direction"])
    ref = json.loads(meta.get("reference_metrics", "{}") or "{}")
    acc["reference_fp32"] = ref
    acc["primary_metric"] = task.primary_metric
    if task.primary_metric in ref:
        acc["delta_vs_reference"] = acc["metrics"][task.primary_metric] - ref[task.primary_metric]
    return acc


def _notes(r: dict, meta: dict, tgt: dict | None) -> list[str]:
    """What a reader of the numbers should know (printed under the table, kept in the JSON)."""
    notes = []
    on_x86_cpu = r["environment"].get("backend") in ("ort-cpu", "ort-xnnpack") and r["environment"].get("arch") == "x86_64"
    if r["precision"] == "int8" and on_x86_cpu:
        from ..config import load_target

        try:
            made_for = load_target(meta["target"]) if meta.get("target") else None
        except EdgekdError:
            made_for = None
        if made_for and "tensorrt" in made_for.get("runtimes", []):
            notes.append(f"this INT8 model has symmetric int8 activations (s8s8), the format TensorRT needs ({made_for['name']}); "
                         "ONNX Runtime's x86 int8 kernels are built for u8s8 and run s8s8 on a slower path, so on a CPU it can be "
                         "slower than fp32 (benchmarks/export.md: 0.58x); for a CPU target train with a CPU profile (e.g. --profile mobile), "
                         "whose export writes u8s8")
    return notes


def format_table(r: dict) -> str:
    env = r["environment"]
    what = f"{r['task']}, {r['precision']}" if r.get("task") else "no edgekd metadata: latency only"
    lines = [f"edgekd bench: {r['model']} ({what}, input {'x'.join(map(str, r['input']))})",
             f"  {env.get('backend')} on {env.get('cpu')} ({env.get('cores')} cores, {env.get('threads')} threads)"
             + (f", GPU {env['gpu']}" if env.get("gpu") else "") + f"; {env.get('runtime')}", ""]
    hdr = f"{'batch':>5} {'iters':>6} {'min':>8} {'p50':>8} {'p90':>8} {'p95':>8} {'p99':>8} {'max':>8} {'mean':>8} {'cv':>6} {'img/s':>9}"
    lines += [hdr + "   (ms)", "-" * len(hdr)]
    for v in r["latency"].values():
        lines.append(f"{v['batch']:>5} {v['iters']:>6} {v['min_ms']:>8.2f} {v['p50_ms']:>8.2f} {v['p90_ms']:>8.2f} {v['p95_ms']:>8.2f} "
                     f"{v['p99_ms']:>8.2f} {v['max_ms']:>8.2f} {v['mean_ms']:>8.2f} {v['cv']:>6.3f} {v['throughput_ips']:>9.1f}")
    first = next(iter(r["latency"].values()))
    stages = first.get("stages_p50_ms", {})
    if stages:
        lines.append(f"  stages at batch {first['batch']} (p50 ms): " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()))
    if "budget" in r:
        b = r["budget"]
        head = f"  budget of {b['target']}: p90 {b['p90_ms']:.2f} ms vs {b['latency_budget_ms']:.1f} ms -> "
        if b.get("on_target", True):
            lines.append(head + ("PASS" if b["pass"] else "FAIL"))
        else:
            lines.append(head + f"not on target: no verdict ({b['why_no_verdict']})")
    if "accuracy" in r:
        a = r["accuracy"]
        lines += ["", f"accuracy on {a['images']} validation images ({a['data']}):", f"  {'metric':<10} {'this':>9} {'fp32 ref':>9}"]
        for k, v in a["metrics"].items():
            ref = a["reference_fp32"].get(k)
            lines.append(f"  {k:<10} {v:>9.4f} {('%9.4f' % ref) if ref is not None else '        -'}")
    for n in r.get("notes", []):
        lines.append(f"note: {n}")
    return "\n".join(lines)
