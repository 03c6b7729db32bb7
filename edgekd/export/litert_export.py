"""Student -> LiteRT (``--format litert``, alias ``tflite``): model.tflite, model.fp16.tflite, model.int8.tflite.

* fp32: ``litert_torch.convert`` (litert-torch, PyTorch -> TFLite flatbuffer) of the student wrapped by
  ``litert_torch.to_channel_last_io``: the file takes **NHWC** float32 input (1, H, W, 3) and gives
  NHWC output, the layout of a camera frame and of LiteRT's kernels, so no transpose is left at
  either end of the graph.  Parity-checked against PyTorch on the run's validation images.
* fp16: ai-edge-quantizer's float casting of the conv/dense weights to fp16 (half the file; XNNPACK
  computes in fp32 on a CPU, a GPU delegate in fp16); held to the fp16 tolerance (0.02) as the ONNX fp16 file.
* int8: ai-edge-quantizer's static int8 recipe (int8 weights per channel, int8 activations, int8
  input with its scale and zero point in the file), the head's last conv and output activation kept
  float as in the ONNX INT8 file (float32 output), calibrated on the run's training images run
  through the fp32 file, judged on its validation images against the fp32 file; ``--max-drop`` applies.  PT2E quantisation in litert-torch was tried first and fails on
  the depth head (benchmarks/export/export.md).

Every file carries the ONNX file's model card plus its layout (bench/tflite_file.py), and replaces the
previous one only when its check passed (a failing one is kept as ``*.failed.tflite``).
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

import numpy as np

from ..bench.runners.base import installed
from ..errors import EdgekdError, MissingDependencyError

_MISSING = ('--format litert needs the LiteRT converter, which is not installed; pip install -e ".[litert]" '
            "(litert-torch with ai-edge-quantizer and ai-edge-litert), or export --format onnx")
FILES = {"fp32": "model.tflite", "fp16": "model.fp16.tflite", "int8": "model.int8.tflite"}


def check_converter() -> None:
    """The converter and quantizer are there (checked before the checkpoint is read)."""
    if not (installed("litert_torch") and installed("ai_edge_quantizer") and installed("ai_edge_litert")):
        raise MissingDependencyError(_MISSING)


def card(job, precision: str) -> dict:
    """The ONNX file's model card (edgekd/card.py), with this file's layout and precision, as props."""
    from ..card import ModelCard

    h, w = job.cfg.data.image_size
    c = ModelCard.of_run(job.task, job.cfg, job.ckpt, precision)
    return c.replace(layout="NHWC", input_shape=[1, h, w, 3], input_name="args_0",
                     extra={"output_layout": "NHWC", "converter": f"litert-torch {_version('litert-torch')}"}).to_props()


def convert_student(model, size) -> bytes:
    """The student as an fp32 TFLite flatbuffer with NHWC input and output (litert-torch)."""
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n")  # edgekd says what it does in its own lines
    import torch

    with _quiet():  # its import logs through absl and torch's warnings as well
        import litert_torch

    wrapped = litert_torch.to_channel_last_io(model, args=[0], outputs=[0]).eval()
    sample = torch.zeros(1, *size, 3)
    try:
        with torch.no_grad(), _quiet():
            return bytes(litert_torch.convert(wrapped, (sample,)).model_content())
    except Exception as e:  # the converter's own failure, stated plainly
        raise EdgekdError(f"litert-torch cannot convert this student: {str(e).splitlines()[0][:200]}; export --format onnx instead") from None


@contextlib.contextmanager
def _quiet():
    """The converter's and quantizer's progress prints, kept off edgekd's output."""
    from ..bench.tflite_file import native_output_muted

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), native_output_muted():
        yield


def run_tflite(data: bytes, x: np.ndarray, directory: Path, batch: int = 8) -> np.ndarray:
    """NCHW outputs of the flatbuffer ``data`` on NCHW inputs ``x``, through the bench's own LiteRT runner."""
    from ..bench.runners import create_runner

    with _scratch(data, directory) as path, create_runner("litert", path, threads=os.cpu_count() or 1) as r:
        return np.concatenate([r.infer(x[i : i + batch])[0] for i in range(0, len(x), batch)])


def evaluate_tflite(data: bytes, task, x: np.ndarray, samples: list, directory: Path) -> dict:
    """Task metrics of a flatbuffer on preprocessed ``x`` and their ``samples`` (bench/evaluate.py, as the ONNX check)."""
    from ..bench.evaluate import evaluate
    from ..bench.runners import create_runner

    with _scratch(data, directory) as path, create_runner("litert", path, threads=os.cpu_count() or 1) as r:
        return evaluate(lambda xb: r.infer(xb)[0], task, samples, 8, inputs=x)


@contextlib.contextmanager
def _scratch(data: bytes, directory: Path):
    """``data`` as a hidden file in ``directory`` while it is checked (removed afterwards)."""
    fd, name = tempfile.mkstemp(prefix=".check-", suffix=".tflite", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


def _keep(job, precision: str, data: bytes, passed: bool) -> Path:
    from ..bench.tflite_file import embed_metadata
    from .onnx_export import keep_if_passed

    return keep_if_passed(job.run_dir / FILES[precision], embed_metadata(data, card(job, precision)), passed)


def _checked(job, precision: str, data: bytes, ref: np.ndarray, atol: float, rtol: float) -> dict:
    """Parity of ``data`` against PyTorch's ``ref`` on the job's parity inputs; the file kept (or failed) by it."""
    from .onnx_export import parity_of

    p = parity_of(run_tflite(data, job.parity_inputs, job.run_dir), ref, atol, rtol)
    out = _keep(job, precision, data, p["pass"])
    h, w = job.cfg.data.image_size
    job.log(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, LiteRT {precision}, input 1x{h}x{w}x3 NHWC); parity on {p['images']} "
            f"validation images: max abs err {p['max_abs_err']:.2e}, max rel err {p['max_rel_err']:.2e} "
            f"-> {'ok' if p['pass'] else f'FAIL ({FILES[precision]} left as it was)'}")
    return {"tflite": str(out), "precision": precision, "layout": "NHWC", "input_shape": [1, h, w, 3], "bytes": out.stat().st_size,
            "parity": p}


def _reference(job) -> np.ndarray:
    import torch

    with torch.no_grad():
        return job.model(torch.from_numpy(job.parity_inputs)).float().numpy()


def export_litert(job, source=None) -> None:
    """The litert format step: the three .tflite files, each checked, each recorded in export.json."""
    o = job.options
    h, w = job.cfg.data.image_size
    job.log(f"converting the student to LiteRT with litert-torch (NHWC 1x{h}x{w}x3; about a minute on a CPU)")
    fp32 = convert_student(job.model, (h, w))
    ref = _reference(job)
    rec = job.add("tflite_fp32", _checked(job, "fp32", fp32, ref, o.atol, o.rtol), "tflite")
    if not rec["parity"]["pass"]:
        p = rec["parity"]
        job.failures.append(f"LiteRT fp32 parity error {p['max_abs_err']:.2e} exceeds atol {o.atol}/rtol {o.rtol}")
        return  # nothing is derived from a graph that failed
    rec16 = job.add("tflite_fp16", _checked(job, "fp16", fp16_weights(fp32), ref, max(o.atol, 2e-2), max(o.rtol, 2e-2)), "tflite")
    if not rec16["parity"]["pass"]:
        job.failures.append(f"LiteRT fp16 parity error {rec16['parity']['max_abs_err']:.2e} exceeds atol/rtol 0.02")
    export_int8_tflite(job, fp32)


def fp16_weights(fp32: bytes) -> bytes:
    """fp16 weights for every conv and dense layer, dequantised in the graph (ai-edge-quantizer float casting)."""
    from ai_edge_quantizer import qtyping, quantizer

    q = quantizer.Quantizer(bytearray(fp32))
    q.update_quantization_recipe(
        regex=".*", operation_name="*", algorithm_key=quantizer.AlgorithmName.FLOAT_CASTING,
        op_config=qtyping.OpQuantizationConfig(
            weight_tensor_config=qtyping.TensorQuantizationConfig(num_bits=16, dtype=qtyping.TensorDataType.FLOAT),
            compute_precision=qtyping.ComputePrecision.FLOAT, explicit_dequantize=True))
    with _quiet():
        return bytes(q.quantize().quantized_model)


def head_scopes(fp32: bytes) -> list[str]:
    """The ops from the last convolution on (the head conv and the output activation), as ai-edge-quantizer
    names an op: its output tensors' names, each followed by ';'."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=fp32)
    names = {t["index"]: t["name"] for t in interp.get_tensor_details()}
    ops = [o for o in interp._get_ops_details() if o["op_name"] != "DELEGATE"]
    last = max((i for i, o in enumerate(ops) if o["op_name"] in ("CONV_2D", "FULLY_CONNECTED")), default=len(ops))
    return ["".join(names[t] + ";" for t in o["outputs"]) for o in ops[last:]]


def int8_static(fp32: bytes, calib_nhwc: np.ndarray, float_head: bool = True) -> bytes:
    """Static int8 (weights per channel, activations int8, int8 input) calibrated on ``calib_nhwc`` (N, H, W, 3).

    ``float_head``: the last conv and the output activation stay float, as in the ONNX INT8 file; the output
    is then float32.  Quantising them too (int8 output: depth in 256 steps) cost 1.06 points of δ1 on a
    trained checkpoint against 0.06 (benchmarks/export/export.md).
    """
    import re

    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer, recipe

    signature, names = next(iter(Interpreter(model_content=fp32).get_signature_list().items()))
    q = quantizer.Quantizer(bytearray(fp32))
    q.load_quantization_recipe(recipe.static_wi8_ai8())
    for scope in head_scopes(fp32) if float_head else []:  # the latest matching recipe entry wins
        q.update_quantization_recipe(regex=f"^{re.escape(scope)}$", operation_name="*", algorithm_key=quantizer.AlgorithmName.NO_QUANTIZE)
    data = {signature: [{names["inputs"][0]: calib_nhwc[i : i + 1]} for i in range(len(calib_nhwc))]}
    with _quiet():
        result = q.calibrate(data, num_threads=os.cpu_count() or 1)
        return bytes(q.quantize(result).quantized_model)


def export_int8_tflite(job, fp32: bytes) -> dict:
    """model.int8.tflite: calibrated on training images, kept only when its drop on validation images is within --max-drop."""
    from ..bench.evaluate import validation_batch

    o, task = job.options, job.task
    calib, _ = validation_batch(job.cfg, task, o.calib_size, split="train")
    job.log(f"calibrating LiteRT INT8 (int8 input and body, head conv and output float; min/max) on {len(calib)} training images")
    int8 = int8_static(fp32, np.ascontiguousarray(calib.transpose(0, 2, 3, 1)))
    x, samples = validation_batch(job.cfg, task, o.eval_size or job.cfg.train.val_size)
    m32 = evaluate_tflite(fp32, task, x, samples, job.run_dir)
    m8 = evaluate_tflite(int8, task, x, samples, job.run_dir)
    key = task.primary_metric
    drop = (m32[key] - m8[key]) if task.higher_is_better else (m8[key] - m32[key])
    ok = drop <= o.max_drop
    out = _keep(job, "int8", int8, ok)
    job.log(f"wrote {out}; {key} on {len(x)} validation images: LiteRT fp32 {m32[key]:.4f}, int8 {m8[key]:.4f}, drop {drop:+.4f} "
            f"(max {o.max_drop}) -> {'ok' if ok else 'FAIL (model.int8.tflite left as it was)'}")
    rec = {"tflite": str(out), "precision": "int8", "layout": "NHWC", "io": "int8 input (scale and zero point in the file), float32 output",
           "float_ops": "the last conv and the output activation (as the ONNX INT8 file)",
           "bytes": out.stat().st_size, "calib_images": len(calib), "calib_method": "minmax (ai-edge-quantizer)", "eval_images": len(x),
           "fp32_metrics": m32, "int8_metrics": m8, "primary_metric": key, "drop": drop, "max_drop": o.max_drop, "pass": ok}
    if not ok:
        job.failures.append(f"LiteRT INT8 {key} drop {drop:.4f} exceeds --max-drop {o.max_drop}; calibrate on more images "
                            "(--calib-size), or ship model.fp16.tflite")
    return job.add("tflite_int8", rec, "tflite")


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"
