"""``edgekd bench``: latency and accuracy of an exported model on this device (torch-free).

Warm-up by time and count, then runs until both a minimum count and a minimum
time are reached; latency statistics per batch size; the task's metrics on
validation data next to the fp32 reference stored in the model's metadata; the
target's latency budget as pass/fail (on p90 at batch 1).  The parts: what was
asked (settings.py), latency (latency.py), accuracy (accuracy.py, on the shared
preprocessing of evaluate.py); this module opens the model and puts them together.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..card import ModelCard
from ..config import BenchConfig, RunConfig, TargetConfig
from ..errors import EdgekdError
from .accuracy import accuracy, accuracy_vs_reference  # noqa: F401  (accuracy: part of this module's interface)
from .evaluate import input_batch, model_input, open_samples
from .device_state import ClockMonitor
from .latency import budget_verdict, machine_arch, measure_latency, memory_verdict, on_target, runs_on_gpu, timed_loop  # noqa: F401
from .memory import PeakMemory, memory_summary, rss_mb
from .settings import BenchSettings


def model_kind(path: Path) -> str:
    """The kind of model file ``path`` is (``onnx``, ``engine``, ``torch``), from the suffixes the runners declare."""
    from .runners import file_kinds, kind_of_suffix

    if not path.exists():
        raise EdgekdError(f"model file {path} does not exist; export one with: edgekd export runs/<run>")
    if path.is_dir():
        raise EdgekdError(f"{path} is a directory; give the model file (for example {path / 'model.onnx'})")
    kind = kind_of_suffix(path.suffix)
    if kind is None:
        known = ", ".join(f"{cls.file_noun} ({'/'.join(cls.suffixes)})" for cls in file_kinds().values())
        raise EdgekdError(f"{path}: unknown model type {path.suffix.lower() or '(no suffix)'}; give {known}")
    return kind


def pick_backend(kind: str, requested: str, target) -> str:
    """The registered backend that runs a ``kind`` file: ``auto`` asks the target (runners.base.auto_backend)."""
    from .runners import auto_backend, backend_class, file_kinds, list_backends

    if requested == "auto":
        return auto_backend(kind, target)
    cls = backend_class(requested)
    if cls.model_kind != kind:
        if kind == "onnx":
            raise EdgekdError(f"--backend {requested} needs a {cls.suffixes[0]} file, not an ONNX model")
        raise EdgekdError(f"{file_kinds()[kind].file_noun} runs only with --backend {' or '.join(list_backends(kind))} (got {requested})"
                          + ("; export it to ONNX first" if kind == "torch" else ""))
    return cls.name


def make_runner(path: Path, backend: str, threads: int, precision: str):
    """An open runner of ``backend`` for ``path`` (close it, or use it as a context manager)."""
    from .runners import create_runner

    return create_runner(backend, path, threads=threads, precision=precision).open()


def model_metadata(runner, kind: str, path: Path, need_task: bool = True) -> dict:
    """The props of the model card the file carries (edgekd/card.py), refused when accuracy needs one and it has none."""
    meta = runner.metadata()
    if not ModelCard.from_props(meta, str(path)).is_edgekd and (need_task or kind != "onnx"):
        raise EdgekdError(f"{path} carries no edgekd metadata (task, input size, normalisation), so its accuracy cannot be judged; "
                          "time it alone with --no-accuracy, or export it with edgekd export")
    return meta


def generic_input(runner, path: Path, log=print, shape=None) -> np.ndarray:
    """A random input for an ONNX model without edgekd metadata (latency only): fixed dims as declared,
    a dynamic batch as 1, a dynamic image size as ``shape`` (H, W), else 224x224 (said in one line)."""
    inputs = runner.input_spec()
    if inputs is None:
        raise EdgekdError(f"{path.name} carries no edgekd metadata; time a third-party model with an onnxruntime backend (--backend ort-cpu)")
    if len(inputs) != 1:
        raise EdgekdError(f"{path.name} has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); edgekd bench times single-input models")
    inp = inputs[0]
    if inp.dtype is None:
        raise EdgekdError(f"{path.name}: input {inp.name} has type {inp.runtime_type}; edgekd bench feeds numeric tensors only")
    dims, guessed = [], []
    for i, d in enumerate(inp.shape):
        if isinstance(d, int) and d > 0:
            dims.append(d)
        elif i == 0:
            dims.append(1)
        elif len(inp.shape) == 4 and i >= 2:
            dims.append(shape[i - 2] if shape else 224)
            guessed.append(i)
        else:
            raise EdgekdError(f"{path.name}: input {inp.name} has a dynamic dimension {i} ({d!r}) that edgekd bench cannot guess; "
                              "export the model with a fixed input shape")
    if shape and len(guessed) < 2:
        raise EdgekdError(f"--shape {shape[0]}x{shape[1]}: {path.name} takes a fixed input {'x'.join(map(str, dims[1:]))}; drop --shape")
    if guessed:
        log(f"note: {path.name} has a dynamic image size; timing it at {dims[2]}x{dims[3]}"
            + ("" if shape else " (set it with --shape HxW)"))
    dtype = np.dtype(inp.dtype)
    rng = np.random.default_rng(0)
    if np.issubdtype(dtype, np.floating):
        return rng.standard_normal(dims).astype(dtype)
    if dtype == np.uint8:
        return rng.integers(0, 256, dims, dtype=np.uint8)
    return np.zeros(dims, dtype=dtype)


def input_hw(runner, card: ModelCard) -> tuple[int, int]:
    shape = runner.input_shape()
    if shape:
        if len(shape) != 4 or shape[1] != 3:
            raise EdgekdError(f"model input has shape {shape}; edgekd bench expects (batch, 3, H, W)")
        if isinstance(shape[2], int) and isinstance(shape[3], int):
            return shape[2], shape[3]
    if len(card.input_shape) != 4:
        raise EdgekdError("the model's metadata has no input shape; export it with edgekd export")
    return int(card.input_shape[2]), int(card.input_shape[3])


def _say_fallback(requested: str, picked: str, tgt, log) -> None:
    """``auto`` took a backend other than the target's first choice: say so in one line."""
    from .runners import providers_by_backend

    wanted = tgt.providers if tgt else []
    by_provider = {v: k for k, v in providers_by_backend().items()}
    first = next((by_provider[p] for p in wanted if p in by_provider), None)
    if requested == "auto" and first and picked != first:
        names = [by_provider[p] for p in wanted if p in by_provider]
        skipped = names[: names.index(picked)] if picked in names else names
        log(f"backend auto: {', '.join(skipped)} not available on this machine; using {picked}")


@dataclass
class OpenModel:
    """A model file opened on its backend, with what decides how it is benched."""

    path: Path
    kind: str  # "onnx", "engine" or "torch"
    cfg: RunConfig | None  # the --profile's configuration
    tgt: TargetConfig | None  # the target's facts: --target, the profile's, or the one named in the model's metadata
    bc: BenchConfig  # the profile's [bench] table (its defaults without a profile)
    backend: str
    runner: object
    meta: dict  # the file's metadata as it holds it (props: strings)
    card: ModelCard  # the same, read as the model card


def open_model(s: BenchSettings, log=print) -> OpenModel:
    """Resolve profile, target and backend for ``s.model`` and open it on that backend."""
    from ..config import load_profile, target_config

    path = Path(s.model).expanduser()
    kind = model_kind(path)
    cfg = RunConfig.from_dict(load_profile(s.profile)) if s.profile else None
    tgt = target_config(s.target) if s.target else (cfg.target if cfg else None)
    bc = (cfg or RunConfig()).bench  # no profile: the schema's defaults
    requested = s.backend or bc.backend
    backend = pick_backend(kind, requested, tgt)
    cores = os.cpu_count() or 1
    threads = s.threads if s.threads is not None else min(tgt.threads if tgt else cores, cores)
    runner = make_runner(path, backend, threads, "fp32")
    meta = model_metadata(runner, kind, path, need_task=s.accuracy_check)
    card = ModelCard.from_props(meta, str(path))
    if tgt is None and card.target:
        try:
            tgt = target_config(card.target)
        except EdgekdError:
            tgt = None
    if kind == "onnx":  # the target's providers are ONNX Runtime's
        _say_fallback(requested, backend, tgt, log)
    return OpenModel(path, kind, cfg, tgt, bc, backend, runner, meta, card)


def run_bench(model, log=print, **options) -> dict:
    """:func:`bench` with :class:`BenchSettings`' fields by name (a script's call); returns every figure (``edgekd bench --json``)."""
    return bench(BenchSettings(model, **options), log)


def bench(s: BenchSettings, log=print) -> dict:
    """Latency, memory, power, placement, budget verdicts, accuracy and device state of ``s.model``."""
    from .compare import compare_results, load_result

    s.check()
    old = load_result(s.compare_to) if s.compare_to else None  # a bad file is refused before the model loads
    m = open_model(s, log)
    baseline_mb = rss_mb()  # the loaded runtime and model, before their first run
    try:
        results, x1 = _timed(m, s, baseline_mb, log)
        ev = results.pop("_eval", None)
        if s.accuracy_check:
            results["accuracy"] = accuracy_vs_reference(m.runner, m.card, ev, s.show_progress)
        results["placement"] = _placement(m.runner, x1, log) if s.placement else None
        results["environment"] = _environment(m, results["precision"])
        results["notes"] = _notes(results, m.meta)
        results.update(_provenance(m))
    finally:
        m.runner.close()
    if old is not None:
        results["comparison"] = compare_results(old, results, s.compare_to)
    return results


def _timed(m: OpenModel, s: BenchSettings, baseline_mb, log) -> tuple[dict, np.ndarray]:
    """The timed loops with their monitors (memory, power, clock), and the budget verdicts."""
    from .gpu import gpu_memory
    from .power import PowerMonitor, open_power_readers

    timing = s.timing(m.bc)
    if m.card.is_edgekd:
        results, x1, pre_fn = _edgekd_model(m, s, log)
    else:  # a third-party ONNX model: latency only, on a random input of its declared shape
        x1, pre_fn = generic_input(m.runner, m.path, log, s.shape), None
        results = {"model": str(m.path), "kind": m.kind, "precision": "unknown", "task": None, "input": list(x1.shape[1:])}
    readers, no_power = open_power_readers()
    monitors = (PeakMemory(baseline_mb), PowerMonitor(readers, no_power), ClockMonitor())
    results.update(settings=timing, latency=measure_latency(m.runner, x1, s.batch or m.bc.batch, timing,
                                                             s.show_progress, pre_fn, monitors))
    results["memory"] = memory_summary(results["latency"], baseline_mb, gpu_memory() if runs_on_gpu(m.runner) else None)
    results["power"] = {"sensors": [r.name for r in readers], "unavailable": no_power}
    for key, verdict in (("budget", budget_verdict(m.tgt, m.runner, m.backend, results["latency"])),
                         ("memory_budget", memory_verdict(m.tgt, m.runner, m.backend, results["memory"]))):
        if verdict is not None:
            results[key] = verdict
    return results, x1


def _placement(runner, x1: np.ndarray, log) -> dict | None:
    """The runtime's own account of where the nodes ran (a separate profiled run, after the timed loops)."""
    from .placement import placement_warning

    try:
        p = runner.placement(x1)
    except Exception as e:  # a runtime whose profiler fails must not cost the user the timings
        log(f"note: placement not available ({type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''})")
        return {"error": f"{type(e).__name__}: {e}"}
    w = placement_warning(p)
    if w:
        log(f"warning: {w}")
        p["warning"] = w
    return p
def _provenance(m: OpenModel) -> dict:
    """The file benched (sha256, checkpoint step and hash: bench/provenance.py) and when: a report keeps the newest
    bench of each file and tells a bench of an older file."""
    from .provenance import file_provenance, now_utc

    return {"file": file_provenance(m.path, m.card), "measured_at": now_utc()}


def _environment(m: OpenModel, precision: str) -> dict:
    from .device_state import device_state
    from .environment import environment

    env = environment(m.runner)
    env["precision"] = precision
    env["target"] = m.tgt.name if m.tgt else None
    env["arch"] = machine_arch()
    env.update(device_state(env.get("threads")))
    return env


def _sample_input(task, data, data_format, hw, seed, direction, accuracy_check, log, depth_scale=0.0):
    """One validation sample for the latency runs.  Without the data on this device, the latency-only run
    takes a synthetic scene instead (the graph's cost does not depend on the pixels)."""
    try:
        return open_samples(data, "val", hw, 1, seed, data_format, task, direction, depth_scale=depth_scale)[0]
    except EdgekdError as e:
        if accuracy_check:
            raise EdgekdError(f"{e} (or time latency alone with --no-accuracy)") from None
        log(f"note: validation data {data} is not available here; timing on a synthetic scene")
        return open_samples("synthetic", "val", hw, 1, seed, "auto", task)[0]


def _edgekd_model(m: OpenModel, s: BenchSettings, log):
    """Input, pre-processing and evaluation set-up for a model exported by edgekd (its metadata says how)."""
    from ..tasks import create_task

    hw = input_hw(m.runner, m.card)
    if s.shape and tuple(s.shape) != tuple(hw):
        raise EdgekdError(f"--shape {s.shape[0]}x{s.shape[1]}: {m.path.name} was exported for 3x{hw[0]}x{hw[1]} input; drop --shape, or "
                          "export the run at that size")
    if m.cfg is not None and tuple(m.cfg.data.image_size) != tuple(hw):
        ph, pw = m.cfg.data.image_size
        # The profile picks the target and the bench settings; the model's own graph fixes its input size.
        log(f"note: {m.path.name} takes 3x{hw[0]}x{hw[1]} input (profile {m.cfg.profile.name} trains at {ph}x{pw}); "
            "timing it at its own size")
    task = create_task(m.card.task, **m.card.task_args)
    ref_eval = m.card.reference_eval
    data = s.data or ref_eval.get("data", "synthetic")
    data_format = s.data_format or ref_eval.get("data_format", "auto")
    seed = int(ref_eval.get("seed", 0))
    direction = ref_eval.get("direction", "AtoB")
    sample = _sample_input(task, data, data_format, hw, seed, direction, s.accuracy_check, log, float(ref_eval.get("depth_scale", 0.0)))
    precision = _precision(m.card, m.path)
    results = {"model": str(m.path), "kind": m.kind, "precision": precision, "task": task.name, "input": [3, *hw],
               "_eval": {"task": task, "data": data, "data_format": data_format, "seed": seed, "hw": hw, "direction": direction,
                         "n": int(ref_eval.get("n", 64)), "val_size": s.val_size, "model": str(m.path), "precision": precision,
                         "kind": m.kind, "depth_scale": float(ref_eval.get("depth_scale", 0.0))}}
    return results, input_batch(task, [sample]), lambda: model_input(task, sample)


def _precision(card: ModelCard, path: Path) -> str:
    name = path.name.lower()
    for p in ("int8", "fp16"):  # quantisation keeps the fp32 graph's metadata: the file name says what it is
        if f".{p}." in name:
            return p
    return card.precision


def _notes(r: dict, meta: dict) -> list[str]:
    """What a reader of the numbers should know (printed under the table, kept in the JSON)."""
    notes = []
    if r["precision"] == "fp16" and r["environment"].get("backend") in ("ort-cpu", "ort-xnnpack", "openvino"):
        notes.append("this is an fp16 model on a CPU backend: CPUs without native fp16 arithmetic convert every fp16 tensor "
                     "to fp32 and back, so it is usually slower than the fp32 model.onnx; fp16 is for GPUs (TensorRT, CUDA). "
                     "On a CPU deploy fp32, or INT8 exported for a CPU target (u8s8: edgekd export RUN --precision int8 --target android-arm64, or your CPU target)")
    on_x86_cpu = r["environment"].get("backend") in ("ort-cpu", "ort-xnnpack") and r["environment"].get("arch") == "x86_64"
    if r["precision"] == "int8" and on_x86_cpu:
        from ..config import target_config

        try:
            made_for = target_config(meta["target"]) if meta.get("target") else None
        except EdgekdError:
            made_for = None
        if made_for and "tensorrt" in made_for.runtimes:
            notes.append(f"this INT8 model has symmetric int8 activations (s8s8), the format TensorRT needs ({made_for.name}); "
                         "ONNX Runtime's x86 int8 kernels are built for u8s8 and run s8s8 on a slower path, so on a CPU it can be "
                         "slower than fp32 (benchmarks/export/export.md: 0.58x); for a CPU write u8s8 from the same checkpoint with "
                         "edgekd export RUN --precision int8 --target android-arm64 (or your CPU target)")
    return notes


def format_table(r: dict) -> str:
    env = r["environment"]
    what = f"{r['task']}, {r['precision']}" if r.get("task") else "no edgekd metadata: latency only"
    lines = [f"edgekd bench: {r['model']} ({what}, input {'x'.join(map(str, r['input']))})",
             f"  {env.get('backend')} on {env.get('cpu')} ({env.get('cores')} cores, {env.get('threads')} threads)"
             + (f", GPU {env['gpu']}" if env.get("gpu") else "") + f"; {env.get('runtime')}", ""]
    energy = _energy_column(r["latency"])
    hdr = (f"{'batch':>5} {'iters':>6} {'min':>8} {'p50':>8} {'p90':>8} {'p95':>8} {'p99':>8} {'max':>8} {'mean':>8} {'cv':>6} {'img/s':>9}"
           f" {'peak MB':>8}" + (f" {'mJ/img':>8}" if energy else ""))
    lines += [hdr + "   (times in ms)", "-" * len(hdr)]
    for v in r["latency"].values():
        peak = (v.get("memory") or {}).get("peak_rss_mb")
        lines.append(f"{v['batch']:>5} {v['iters']:>6} {v['min_ms']:>8.2f} {v['p50_ms']:>8.2f} {v['p90_ms']:>8.2f} {v['p95_ms']:>8.2f} "
                     f"{v['p99_ms']:>8.2f} {v['max_ms']:>8.2f} {v['mean_ms']:>8.2f} {v['cv']:>6.3f} {v['throughput_ips']:>9.1f}"
                     + (f" {peak:>8.1f}" if peak is not None else f" {'-':>8}") + (f" {energy(v):>8}" if energy else ""))
    first = next(iter(r["latency"].values()))
    stages = first.get("stages_p50_ms", {})
    if stages:
        lines.append(f"  stages at batch {first['batch']} (p50 ms): " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()))
    lines += _verdict_lines(r) + _truth_lines(r, first)
    if "accuracy" in r:
        lines += _accuracy_lines(r["accuracy"])
    if r.get("file", {}).get("checkpoint_step") is not None:
        f = r["file"]
        lines.append(f"  file {f['file']}: sha256 {f['sha256'][:12]}, from {f['checkpoint']} at step {f['checkpoint_step']}")
    for n in r.get("notes", []):
        lines.append(f"note: {n}")
    if "comparison" in r:
        from .compare import comparison_lines

        lines += comparison_lines(r["comparison"])
    return "\n".join(lines)


def _energy_column(latency: dict):
    """A function giving a batch's millijoules per image (first sensor), or None when no sensor measured."""
    first = next(iter(latency.values())).get("power") or {}
    if not first.get("sensor"):
        return None
    name = first["sensor"][0]
    return lambda v: f"{v['power'][name]['mj_per_image']:.1f}" if (v.get("power") or {}).get(name) else "-"


def _verdict_lines(r: dict) -> list[str]:
    """The target's latency budget and memory against this run (PASS/FAIL only on the target's kind of hardware)."""
    lines = []
    for key, head in (("budget", lambda b: f"  budget of {b['target']}: p90 {b['p90_ms']:.2f} ms vs {b['latency_budget_ms']:.1f} ms -> "),
                      ("memory_budget", lambda b: f"  memory of {b['target']}: {b['footprint_mb']:.0f} MB vs {b['memory_gb']:g} GB -> ")):
        if key in r:
            b = r[key]
            if b.get("on_target", True):
                lines.append(head(b) + ("PASS" if b["pass"] else "FAIL"))
            else:
                lines.append(head(b) + f"not on target: no verdict ({b['why_no_verdict']})")
    return lines


def _truth_lines(r: dict, first: dict) -> list[str]:
    """Memory, power, placement and the device's state, one line each."""
    from .placement import placement_line

    mem, env, lines = r.get("memory") or {}, r["environment"], []
    if mem.get("peak_rss_mb") is not None:
        gpu = (mem.get("gpu") or {}).get("process_used_mb")
        over = (f", +{mem['increase_mb']:.1f} MB over the loaded model's {mem['baseline_rss_mb']:.1f} MB" if mem.get("increase_mb") is not None
                else "")
        lines.append(f"  memory: peak {mem['peak_rss_mb']:.1f} MB resident{over}" + (f"; GPU {gpu:.0f} MB (this process)" if gpu is not None else ""))
    power = first.get("power") or {}
    if power.get("sensor"):
        lines += [f"  power at batch {first['batch']}: {n} {power[n]['mean_w']:.2f} W mean, {power[n]['mj_per_inference']:.2f} mJ/inference "
                  f"({power[n]['scope']})" for n in power["sensor"]]
    elif power:
        lines.append("  power: no sensor (" + "; ".join(power["why"].values()) + ")")
    p = r.get("placement")
    if p and "units" in p:
        lines.append(f"  placement: {placement_line(p)}")
    lines.append("  device: " + ", ".join(f"{k} {env.get(k) if env.get(k) is not None else '-'}" for k in
                                          ("cpu_governor", "cores_allowed", "power_mode", "l4t", "nvidia_driver", "cuda_driver"))
                 + "; throttling " + _throttling_text(first.get("throttling") or {}))
    return lines


def _throttling_text(t: dict) -> str:
    if t.get("throttled") is None:
        return t.get("why", "not observed")
    return ("SEEN" if t["throttled"] else "none") + f" (CPU clock {t['cpu_mhz_min']:.0f}-{t['cpu_mhz_max']:.0f} MHz, drop {t['clock_drop']:.0%})"
def _accuracy_lines(a: dict) -> list[str]:
    """The accuracy table: this file, and the fp32 reference only when it was measured on the same images."""
    lines = ["", f"accuracy on {a['images']} validation images ({a['data']}):", f"  {'metric':<10} {'this':>9} {'fp32 ref':>9}"]
    for k, v in a["metrics"].items():
        ref = a["reference_fp32"].get(k)
        lines.append(f"  {k:<10} {v:>9.4f} {('%9.4f' % ref) if ref is not None else '        -'}")
    if a.get("reference_source"):
        lines.append(f"  fp32 reference: {a['reference_source']}")
    else:
        lines.append(f"  no fp32 reference on these images, so no difference: {a.get('reference_why_none', 'none recorded')}")
    return lines
