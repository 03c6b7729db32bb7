"""``edgekd export``: ONNX (fp32 / fp16), INT8 QDQ, TensorRT engines."""

from __future__ import annotations

from pathlib import Path

from ..errors import EdgekdError
from ..fileio import atomic_write_json


# The TorchScript exporter writes 7..23 here, but before opset 11 ONNX resizes images differently from
# PyTorch (parity fails: max abs err 0.07 at opset 9/10 on a depth student) and ONNX Runtime's per-channel
# INT8 quantization needs 13; the profile schema allows the same range.
OPSETS = (13, 23)


def run_export(run, fmt="onnx", precision=None, opset=None, atol=1e-3, rtol=1e-3, parity_size=8, calib_size=64,
               calib_method="percentile", max_drop=0.01, eval_size=None, max_batch=8, expect_task=None, log=print) -> dict:
    """Export ``run`` (a run directory or checkpoint) and return the report (also written as export.json).

    Each artefact replaces its file only after its check passed (a failing one is kept as
    ``*.failed.onnx``); export.json keeps one record per artefact in ``artefacts`` across invocations,
    and this invocation's report at the top level.
    """
    from .onnx_export import export_onnx, load_student, resolve_run, validation_batch

    if opset is not None and not OPSETS[0] <= opset <= OPSETS[1]:
        raise EdgekdError(f"--opset {opset} is not supported: use {OPSETS[0]} to {OPSETS[1]} (older opsets resize images unlike PyTorch "
                          "and cannot hold per-channel INT8)")
    for name, value in (("--parity-size", parity_size), ("--calib-size", calib_size), ("--max-batch", max_batch), ("--eval-size", eval_size)):
        if value is not None and value < 1:
            raise EdgekdError(f"{name} {value}: use at least 1")
    ckpt_path, run_dir = resolve_run(run)
    loaded = load_student(ckpt_path)
    _, task, cfg, ckpt = loaded
    if expect_task and task.name != expect_task:
        raise EdgekdError(f"{ckpt_path} was trained for {task.name}, not {expect_task}; export a {expect_task} run or drop --task")
    precision = precision or cfg["export"]["precision"]
    report = {"run": str(run_dir), "format": fmt, "precision": precision}
    source_of = {"checkpoint": str(ckpt_path), "checkpoint_step": ckpt.get("step")}
    parity_x = validation_batch(cfg, task, parity_size)[0]
    report["fp32"] = export_onnx(run, None, opset, "fp32", atol, rtol, parity_size, log=log, loaded=loaded, parity_inputs=parity_x)
    artefacts = {Path(report["fp32"]["onnx"]).name: {**report["fp32"], **source_of}}
    if not report["fp32"]["parity"]["pass"]:
        # Nothing is built from a graph that failed: model.onnx may be an older, good export.
        _write_report(run_dir, report, artefacts)
        p = report["fp32"]["parity"]
        raise EdgekdError(f"fp32 parity error {p['max_abs_err']:.2e} exceeds atol {atol}/rtol {rtol}; {run_dir / 'model.onnx'} left as it "
                          f"was, the failing graph kept in {report['fp32']['onnx']}")
    fp32_path = Path(report["fp32"]["onnx"])
    source = fp32_path
    failures = []
    if precision == "fp16":
        report["fp16"] = export_onnx(run, None, opset, "fp16", atol, rtol, parity_size, log=log, loaded=loaded, parity_inputs=parity_x)
        artefacts[Path(report["fp16"]["onnx"]).name] = {**report["fp16"], **source_of}
        p16 = report["fp16"]["parity"]
        log(f"fp16 parity tolerance: atol {p16['atol']:g}, rtol {p16['rtol']:g} (fp16 arithmetic; at least 0.02, fp32 is held to {atol:g}/{rtol:g})")
        if not p16["pass"]:
            failures.append(f"fp16 parity error {p16['max_abs_err']:.2e} exceeds atol {p16['atol']:g}/rtol {p16['rtol']:g}")
        source = Path(report["fp16"]["onnx"])
    if precision == "int8":
        report["int8"] = _export_int8(cfg, task, run_dir, fp32_path, calib_size, calib_method, max_drop, eval_size, log)
        artefacts[Path(report["int8"]["onnx"]).name] = {**report["int8"], **source_of}
        if not report["int8"]["pass"]:
            others = " or ".join(m for m in ("percentile", "entropy", "minmax") if m != calib_method)  # never the method in use
            failures.append(f"INT8 {report['int8']['primary_metric']} drop {report['int8']['drop']:.4f} exceeds --max-drop {max_drop}; "
                            f"calibrate on more images (--calib-size), try --calib-method {others}, or ship fp16")
        source = Path(report["int8"]["onnx"])
    if fmt == "tensorrt" and not failures:
        _write_report(run_dir, report, artefacts)  # the ONNX part is done whatever TensorRT says
        report["tensorrt"] = _export_engine(run_dir, source, fp32_path, precision, report["fp32"]["input_shape"], max_batch, log)
        artefacts[Path(report["tensorrt"]["engine"]).name] = {**report["tensorrt"], **source_of}
    _write_report(run_dir, report, artefacts)
    if failures:
        raise EdgekdError("; ".join(failures) + f" (the checked files are left as they were; failing ones kept as *.failed.* in {run_dir})")
    return report


def _export_int8(cfg, task, run_dir: Path, fp32_path: Path, calib_size, calib_method, max_drop, eval_size, log) -> dict:
    """Quantize to a candidate file, judge it, and only then let it replace model.int8.onnx."""
    import os

    from .onnx_export import failed_name, validation_batch
    from .quantize import evaluate_onnx, quantize_int8

    symmetric = "tensorrt" in cfg["target"]["runtimes"]
    calib, _ = validation_batch(cfg, task, calib_size, split="train")  # calibrate on training data, judge on validation
    int8_path = run_dir / "model.int8.onnx"
    candidate = run_dir / f".{int8_path.name}.candidate"
    log(f"calibrating INT8 ({'symmetric s8s8 for TensorRT' if symmetric else 'u8s8 for CPU'}, {calib_method}) on {len(calib)} training images")
    try:
        quantize_int8(fp32_path, candidate, calib, symmetric, calib_method)
        x, samples = validation_batch(cfg, task, eval_size or cfg["train"]["val_size"])
        m32 = evaluate_onnx(fp32_path, task, x, samples)
        m8 = evaluate_onnx(candidate, task, x, samples)
        key = task.primary_metric
        drop = (m32[key] - m8[key]) if task.higher_is_better else (m8[key] - m32[key])
        ok = drop <= max_drop
        final = int8_path if ok else failed_name(int8_path)
        os.replace(candidate, final)
        if ok:
            failed_name(int8_path).unlink(missing_ok=True)
    finally:
        candidate.unlink(missing_ok=True)
    log(f"wrote {final}; {key} on {len(x)} validation images: fp32 {m32[key]:.4f}, int8 {m8[key]:.4f}, drop {drop:+.4f} "
        f"(max {max_drop}) -> {'ok' if ok else f'FAIL ({int8_path.name} left as it was)'}")
    return {"onnx": str(final), "precision": "int8", "symmetric": symmetric, "calib_images": len(calib), "calib_method": calib_method,
            "eval_images": len(x), "fp32_metrics": m32, "int8_metrics": m8, "primary_metric": key,
            "drop": drop, "max_drop": max_drop, "pass": ok}


def _export_engine(run_dir: Path, source: Path, fp32_path: Path, precision: str, input_shape, max_batch: int, log) -> dict:
    from .tensorrt_build import build_engine, import_tensorrt, read_onnx_metadata, trt_major, write_engine_metadata

    if precision == "fp16" and trt_major(import_tensorrt()) < 11:
        source = fp32_path  # TensorRT 10 builds fp16 from the fp32 graph with BuilderFlag.FP16
    engine = run_dir / f"model.{precision}.engine"
    rep = build_engine(source, engine, precision, input_shape, max_batch=max_batch, log=log)
    # The engine's precision is the build's, whichever ONNX file it was parsed from.
    write_engine_metadata(engine, {**read_onnx_metadata(source), "precision": precision})
    return rep


def _write_report(run_dir: Path, report: dict, artefacts: dict) -> None:
    """export.json: this invocation's report, plus one record per artefact still on disk (earlier invocations' kept)."""
    import json

    path = run_dir / "export.json"
    try:
        old = json.loads(path.read_text()).get("artefacts") or {} if path.exists() else {}
    except (OSError, ValueError, AttributeError):
        old = {}  # an unreadable record is replaced, not trusted
    kept = {name: rec for name, rec in old.items() if (run_dir / name).exists() and name not in artefacts}
    atomic_write_json(path, {**report, "artefacts": {**kept, **artefacts}})
