"""``edgekd export``: ONNX (fp32 / fp16), INT8 QDQ, TensorRT engines."""

from __future__ import annotations

from pathlib import Path

from ..errors import EdgekdError
from ..fileio import atomic_write_json


def run_export(run, fmt="onnx", precision=None, opset=None, atol=1e-3, rtol=1e-3, parity_size=8, calib_size=64,
               calib_method="percentile", max_drop=0.01, eval_size=None, max_batch=8, expect_task=None, log=print) -> dict:
    """Export ``run`` (a run directory or checkpoint) and return the report (also written as export.json)."""
    from .onnx_export import export_onnx, load_student, resolve_run, validation_batch

    ckpt_path, run_dir = resolve_run(run)
    loaded = load_student(ckpt_path)
    _, task, cfg, _ = loaded
    if expect_task and task.name != expect_task:
        raise EdgekdError(f"{ckpt_path} was trained for {task.name}, not {expect_task}; export a {expect_task} run or drop --task")
    precision = precision or cfg["export"]["precision"]
    report = {"run": str(run_dir), "format": fmt, "precision": precision}
    parity_x = validation_batch(cfg, task, parity_size)[0]
    report["fp32"] = export_onnx(run, None, opset, "fp32", atol, rtol, parity_size, log=log, loaded=loaded, parity_inputs=parity_x)
    fp32_path = Path(report["fp32"]["onnx"])
    source = fp32_path
    failures = []
    if not report["fp32"]["parity"]["pass"]:
        failures.append(f"fp32 parity error {report['fp32']['parity']['max_abs_err']:.2e} exceeds atol {atol}/rtol {rtol}")
    if precision == "fp16":
        report["fp16"] = export_onnx(run, None, opset, "fp16", atol, rtol, parity_size, log=log, loaded=loaded, parity_inputs=parity_x)
        p16 = report["fp16"]["parity"]
        log(f"fp16 parity tolerance: atol {p16['atol']:g}, rtol {p16['rtol']:g} (fp16 arithmetic; at least 0.02, fp32 is held to {atol:g}/{rtol:g})")
        if not p16["pass"]:
            failures.append(f"fp16 parity error {p16['max_abs_err']:.2e} exceeds atol {p16['atol']:g}/rtol {p16['rtol']:g}")
        source = Path(report["fp16"]["onnx"])
    if precision == "int8":
        from .quantize import evaluate_onnx, quantize_int8

        symmetric = "tensorrt" in cfg["target"]["runtimes"]
        calib, _ = validation_batch(cfg, task, calib_size, split="train")  # calibrate on training data, judge on validation
        int8_path = run_dir / "model.int8.onnx"
        log(f"calibrating INT8 ({'symmetric s8s8 for TensorRT' if symmetric else 'u8s8 for CPU'}, {calib_method}) on {len(calib)} training images")
        quantize_int8(fp32_path, int8_path, calib, symmetric, calib_method)
        n = eval_size or cfg["train"]["val_size"]
        x, samples = validation_batch(cfg, task, n)
        m32 = evaluate_onnx(fp32_path, task, x, samples)
        m8 = evaluate_onnx(int8_path, task, x, samples)
        key = task.primary_metric
        drop = (m32[key] - m8[key]) if task.higher_is_better else (m8[key] - m32[key])
        report["int8"] = {"onnx": str(int8_path), "symmetric": symmetric, "calib_images": len(calib), "calib_method": calib_method,
                          "eval_images": len(x), "fp32_metrics": m32, "int8_metrics": m8, "primary_metric": key,
                          "drop": drop, "max_drop": max_drop, "pass": drop <= max_drop}
        log(f"wrote {int8_path}; {key} on {len(x)} validation images: fp32 {m32[key]:.4f}, int8 {m8[key]:.4f}, drop {drop:+.4f} "
            f"(max {max_drop}) -> {'ok' if drop <= max_drop else 'FAIL'}")
        if drop > max_drop:
            others = " or ".join(m for m in ("percentile", "entropy", "minmax") if m != calib_method)
            failures.append(f"INT8 {key} drop {drop:.4f} exceeds --max-drop {max_drop}; calibrate on more images (--calib-size), "
                            f"try --calib-method {others}, or ship fp16")
        source = int8_path
    if fmt == "tensorrt":
        from .tensorrt_build import build_engine, read_onnx_metadata, write_engine_metadata

        atomic_write_json(run_dir / "export.json", report)  # the ONNX part is done whatever TensorRT says
        from .tensorrt_build import import_tensorrt, trt_major

        if precision == "fp16" and trt_major(import_tensorrt()) < 11:
            source = fp32_path  # TensorRT 10 builds fp16 from the fp32 graph with BuilderFlag.FP16
        engine = run_dir / f"model.{precision}.engine"
        report["tensorrt"] = build_engine(source, engine, precision, report["fp32"]["input_shape"], max_batch=max_batch, log=log)
        write_engine_metadata(engine, read_onnx_metadata(source))
    atomic_write_json(run_dir / "export.json", report)
    if failures:
        raise EdgekdError("; ".join(failures) + f" (files kept for inspection in {run_dir})")
    return report
