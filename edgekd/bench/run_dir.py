"""``edgekd bench RUN_DIR``: every exported file of a run, on the backends that can run it, in one table (torch-free).

The files are those ``edgekd export`` writes (``model.onnx``, ``model.fp16.onnx``, ``model.int8.onnx``,
``model.tflite``, ``model.fp16.tflite``, ``model.int8.tflite``, ``model.<precision>.engine``); files kept
because a check failed (``*.failed.*``) and scratch files (``.*``) are left out.  Each file is benched by
:func:`edgekd.bench.run.bench` exactly as ``edgekd bench FILE`` would, all on the same validation images
(each file's own model card names them, and the files of one run share it), so the Δ vs fp32 column
compares numbers measured in this one invocation on the same images.  A file that cannot run here (its
runtime is not installed, the file is damaged) gets a status and the one-line reason instead of stopping
the others.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from ..errors import EdgekdError, MissingDependencyError
from .settings import BenchSettings

FORMAT_OF_KIND = {"onnx": "onnx", "tflite": "litert", "engine": "tensorrt"}
_PRECISION_ORDER = {"fp32": 0, "fp16": 1, "int8": 2}


def file_precision(path: Path) -> str:
    """What an exported file's name says it holds: model.int8.tflite -> int8 (fp32 when it says nothing)."""
    parts = path.name.lower().split(".")
    return next((p for p in ("int8", "fp16", "fp32") if p in parts[1:-1]), "fp32")


def exported_files(run_dir: Path) -> list[Path]:
    """The exported model files of ``run_dir``: by format (ONNX, LiteRT, TensorRT), then fp32, fp16, int8.
    A file's kind comes from the suffixes the runners declare (runners/base.py ``kind_of_suffix``)."""
    from .runners import kind_of_suffix

    kinds = list(FORMAT_OF_KIND)
    found = [(kind_of_suffix(p.suffix), p) for p in run_dir.iterdir()
             if p.is_file() and not p.name.startswith(".") and ".failed." not in p.name]
    exported = [(k, p) for k, p in found if k in FORMAT_OF_KIND]
    return [p for _, p in sorted(exported, key=lambda kp: (kinds.index(kp[0]), _PRECISION_ORDER.get(file_precision(kp[1]), 3), kp[1].name))]


def backends_for(kind: str, requested: str, target) -> list[str]:
    """The backends a ``kind`` file is benched on: ``all`` = every one available here, a named backend for
    its own kind of file, else what ``auto`` picks for the target."""
    from .runners import auto_backend, backend_class, list_backends, unavailable

    if requested == "all":
        names = [n for n in list_backends(kind) if unavailable(n) is None]
        return names or [auto_backend(kind, target)]
    if requested != "auto" and backend_class(requested).model_kind == kind:
        return [backend_class(requested).name]
    return [auto_backend(kind, target)]


def run_target(run_dir: Path, files: list[Path], s: BenchSettings):
    """The target (a TargetConfig) the run was trained for (its config.json, else the one its ONNX file's model card
    names), unless --target or --profile says otherwise."""
    from ..config import RunConfig, load_profile, target_config

    if s.target:
        return target_config(s.target)
    if s.profile:
        return RunConfig.from_dict(load_profile(s.profile)).target
    try:
        saved = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        saved = None
    if isinstance(saved, dict) and isinstance(saved.get("target"), dict):  # a config.json without one: the model card's
        return RunConfig.from_dict(saved).target
    for f in files:  # the model files alone, copied to a device
        if f.suffix.lower() == ".onnx":
            try:
                import onnxruntime as ort

                name = ort.InferenceSession(str(f), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map.get("target")
                return target_config(name) if name else None
            except Exception:  # an unreadable file gets its own row's error; the target is then unknown
                continue
    return None


def bench_file(s: BenchSettings, path: Path, backend: str, log) -> dict:
    """One row: ``path`` benched on ``backend`` (status ok), or why it could not be (skipped: its runtime is
    missing here; error: the file or its data is refused), with the one line that says so."""
    from .run import bench, model_kind
    from .runners import unavailable

    kind = model_kind(path)
    row = {"file": path.name, "format": FORMAT_OF_KIND[kind], "precision": file_precision(path), "backend": backend,
           "size_mb": path.stat().st_size / 1e6}
    why = unavailable(backend)
    if why:
        return {**row, "status": "skipped", "reason": why}
    try:
        result = bench(replace(s, model=path, backend=backend), log)
    except MissingDependencyError as e:
        return {**row, "status": "skipped", "reason": str(e)}
    except EdgekdError as e:
        return {**row, "status": "error", "reason": str(e)}
    b1 = result["latency"].get("batch1") or next(iter(result["latency"].values()))
    acc = result.get("accuracy") or {}
    key = acc.get("primary_metric")
    return {**row, "status": "ok", "backend": result["environment"].get("backend", backend), "precision": result["precision"],
            "metric": key, "value": acc.get("metrics", {}).get(key), "images": acc.get("images"),
            "p50_ms": b1["p50_ms"], "p90_ms": b1["p90_ms"], "fps": b1["throughput_ips"], "result": result}


def add_deltas(rows: list[dict]) -> None:
    """Δ vs fp32: each row's metric minus the fp32 file's of the same format on the same backend (else the
    same format, else any fp32 row), all measured in this invocation on the same validation images."""
    ref = [r for r in rows if r["status"] == "ok" and r["precision"] == "fp32" and r.get("value") is not None]
    for r in rows:
        if r["status"] != "ok" or r.get("value") is None:
            continue
        match = ([q for q in ref if q["format"] == r["format"] and q["backend"] == r["backend"]]
                 or [q for q in ref if q["format"] == r["format"]] or ref)
        if match:
            r["delta_vs_fp32"] = r["value"] - match[0]["value"]
            r["delta_against"] = f"{match[0]['file']} on {match[0]['backend']}"


def say_runtime_fallback(files: list[Path], target, log) -> None:
    """The target prefers LiteRT but this machine has no ai-edge-litert: one line, then ONNX Runtime runs the ONNX files."""
    from .runners import unavailable

    runtimes = target.runtimes if target else []
    if runtimes[:1] == ["litert"] and any(p.suffix.lower() == ".tflite" for p in files) and unavailable("litert"):
        log(f"backend auto: litert, {target.name}'s first runtime, is not installed here (pip install ai-edge-litert); "
            "the .tflite files are skipped and the ONNX files run on ONNX Runtime")


def bench_run_dir(s: BenchSettings, log=print) -> dict:
    """Bench every exported file of the run directory ``s.model``; the rows of the table (``--json`` keeps them all)."""
    s.check()
    run_dir = Path(s.model).expanduser()
    files = exported_files(run_dir)
    if not files:
        raise EdgekdError(f"{run_dir} holds no exported model file (model.onnx, model.tflite, model.*.engine); "
                          f"export one with: edgekd export {run_dir}")
    target = run_target(run_dir, files, s)
    said = set()

    def once(line):  # the same note for every file of a kind is said once
        if line not in said:
            said.add(line)
            log(line)

    say_runtime_fallback(files, target, once)
    from .run import model_kind

    requested = s.backend or "auto"
    rows = [bench_file(s, p, b, once) for p in files for b in backends_for(model_kind(p), requested, target)]
    add_deltas(rows)
    return {"run": str(run_dir), "target": target.name if target else None, "backend": requested, "rows": rows}


def format_run_table(r: dict) -> str:
    """The table a user compares at a glance, and under it the reason of each row that did not run."""
    rows = r["rows"]
    ok = [x for x in rows if x["status"] == "ok"]
    metric = next((x["metric"] for x in ok if x.get("metric")), None) or "metric"
    images = next((x["images"] for x in ok if x.get("images")), None)
    head = f"edgekd bench {r['run']}: {len(rows)} file/backend pairs" + (f", {metric} on {images} validation images" if images else "")
    cols = f"{'file':<20} {'format':<8} {'precision':<9} {'backend':<11} {'status':<8} {'size MB':>7} {metric:>8} {'Δ vs fp32':>9} " \
           f"{'p50 ms':>8} {'p90 ms':>8} {'FPS':>7}"
    lines = [head, "", cols, "-" * len(cols)]
    num = lambda v, w, f: (format(v, f) if v is not None else "-").rjust(w)  # noqa: E731
    for x in rows:
        lines.append(f"{x['file']:<20} {x['format']:<8} {x['precision']:<9} {x['backend']:<11} {x['status']:<8} {x['size_mb']:>7.1f} "
                     f"{num(x.get('value'), 8, '.4f')} {num(x.get('delta_vs_fp32'), 9, '+.4f')} {num(x.get('p50_ms'), 8, '.2f')} "
                     f"{num(x.get('p90_ms'), 8, '.2f')} {num(x.get('fps'), 7, '.1f')}")
    for x in rows:
        if x["status"] != "ok":
            lines.append(f"  {x['file']} ({x['backend']}): {x['status']}: {x['reason']}")
    if any("delta_vs_fp32" in x for x in rows):
        lines.append("Δ vs fp32: against the fp32 file of the same format on the same backend, measured here on the same images")
    return "\n".join(lines)
