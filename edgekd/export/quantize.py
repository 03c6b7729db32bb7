"""INT8: ONNX Runtime static quantization (QDQ, per-channel weights) calibrated on the run's data.

The same QDQ file is TensorRT's explicit-quantization input.  For a TensorRT
target activations are symmetric int8 (what TensorRT requires); for a CPU
target they are asymmetric uint8 with int8 weights (U8S8, the fast path of
ONNX Runtime's x86 and ARM kernels).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import EdgekdError


class _Reader:
    """CalibrationDataReader over preprocessed calibration images, one at a time."""

    def __init__(self, x: np.ndarray):
        self.x = x
        self.i = 0

    def get_next(self):
        if self.i >= len(self.x):
            return None
        self.i += 1
        return {"input": self.x[self.i - 1 : self.i]}

    def rewind(self):
        self.i = 0


# The op types ONNX Runtime's static quantizer quantizes by default (quantize_static's own default list).
def quantizable_op_types() -> set[str]:
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    return set(QLinearOpsRegistry) | set(QDQRegistry)


class Int8Quantiser:
    """One fp32 graph made ready for ONNX Runtime static QDQ quantization once, written in as many variants as asked.

    The graph is pre-processed (shape inference, BatchNorm folded into Conv) and calibrated once: ONNX
    Runtime calibrates the *float* graph, so the ranges do not depend on which nodes are later kept in
    float, and every variant (:meth:`write` with ``float_nodes`` or ``only_nodes``) reuses them through
    ``quantize_static``'s calibration cache; a variant is the file a fresh ``quantize_static`` with the
    same exclusions would write (tests/export/test_int8_recovery.py checks this).  Use as a context manager: its
    temporary files live beside the output.
    """

    METHODS = ("minmax", "entropy", "percentile")

    def __init__(self, fp32_path, workdir, calib: np.ndarray, symmetric: bool, method: str = "minmax", exclude_last: bool = True):
        if method not in self.METHODS:
            raise EdgekdError(f"unknown --calib-method {method!r}; use one of: {', '.join(self.METHODS)}")
        self.fp32_path, self.calib, self.symmetric, self.method = Path(fp32_path), calib, symmetric, method
        self._tmp = tempfile.TemporaryDirectory(dir=workdir, prefix=".int8-")
        self.pre = os.path.join(self._tmp.name, "pre.onnx")
        self.cache = os.path.join(self._tmp.name, "calibration.json")
        from onnxruntime.quantization.shape_inference import quant_pre_process

        # Shape inference + graph optimisation (BatchNorm folded into Conv) before inserting Q/DQ.
        quant_pre_process(str(fp32_path), self.pre, skip_symbolic_shape=False)
        self.nodes, self.head = self._graph_nodes(exclude_last)

    def _graph_nodes(self, exclude_last: bool) -> tuple[list[tuple[str, str]], list[str]]:
        """The quantizable (name, op type) pairs in graph order, and the head node(s) always kept in float."""
        import onnx

        graph = onnx.load(self.pre).graph
        ops = quantizable_op_types()
        # Shape arithmetic (Gather/Concat/Slice on int64 shapes) is never quantized: only nodes on float tensors count.
        types = {v.name: v.type.tensor_type.elem_type for v in (*graph.value_info, *graph.input, *graph.output)}
        types.update({i.name: i.data_type for i in graph.initializer})
        nodes = [(n.name, n.op_type) for n in graph.node
                 if n.op_type in ops and n.input and types.get(n.input[0]) == onnx.TensorProto.FLOAT]
        # The head's last conv maps to the output range (metres, logits): keeping it in float costs
        # little and avoids quantizing the tensor the metrics are computed on.  edgekd's students name
        # their head module "head" (models/student.py); any other graph: its last conv.
        convs = [name for name, op in nodes if op in ("Conv", "Gemm", "MatMul")]
        head = ([c for c in convs if "/head/" in c] or convs)[-1:] if exclude_last else []
        return [(name, op) for name, op in nodes if name not in head], head

    def workdir_file(self, name: str) -> str:
        """A path in the quantiser's temporary directory (removed with it)."""
        return os.path.join(self._tmp.name, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._tmp.cleanup()

    def check_names(self, names, option: str = "--exclude-nodes") -> None:
        """Refuse node names the graph does not have as quantizable nodes (one line, with examples)."""
        known = {name for name, _ in self.nodes} | set(self.head)
        unknown = [n for n in names if n not in known]
        if unknown:
            examples = ", ".join(name for name, _ in self.nodes[:3])
            raise EdgekdError(f"{option}: {', '.join(map(repr, unknown))} is not a quantizable node of {self.fp32_path.name} "
                              f"({len(self.nodes)} are, e.g. {examples}); --sensitivity lists them with their error")

    def write(self, out_path, float_nodes=(), only_nodes=None, metadata: dict | None = None) -> Path:
        """Write a QDQ INT8 copy to ``out_path`` (atomically): ``float_nodes`` kept in float, or only ``only_nodes`` quantized."""
        from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

        class Reader(_Reader, CalibrationDataReader):
            pass

        methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile}
        out_path = Path(out_path)
        tmp_out = os.path.join(self._tmp.name, "int8.onnx")
        cached = os.path.exists(self.cache)
        quantize_static(
            self.pre, tmp_out, None if cached else Reader(self.calib), quant_format=QuantFormat.QDQ, per_channel=True,
            activation_type=QuantType.QInt8 if self.symmetric else QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=methods[self.method], nodes_to_exclude=[*self.head, *float_nodes], nodes_to_quantize=list(only_nodes or []),
            extra_options={"ActivationSymmetric": self.symmetric, "WeightSymmetric": True}, calibration_cache_path=self.cache,
        )
        _float_outputs(tmp_out, float_nodes)
        # The QDQ copy inherits the fp32 file's metadata: say what it is.
        set_metadata(tmp_out, {"precision": "int8", **(metadata or {})})
        os.replace(tmp_out, out_path)
        return out_path


WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def _float_outputs(path, float_nodes) -> None:
    """Remove the Q/DQ pair on the output of each float Conv/Gemm/MatMul in ``float_nodes``.

    ``nodes_to_exclude`` leaves the node's weights float, but its neighbours still quantize its input
    and output; ONNX Runtime's basic graph optimisation (every session's default) then quantizes a float
    weight that sits between a DequantizeLinear and a QuantizeLinear itself, so the node would run in
    INT8 after all (measured: tests/export/test_int8_recovery.py's planted node).  Without the output pair the
    node stays float at run time; its consumers read the float tensor.
    """
    import onnx

    m = onnx.load(str(path))
    g, wanted = m.graph, set(float_nodes)
    nodes = list(g.node)
    outs = {o for n in nodes if n.name in wanted and n.op_type in WEIGHTED_OPS for o in n.output}
    readers: dict = {}
    for i, n in enumerate(nodes):
        for name in n.input:
            readers.setdefault(name, []).append(i)
    drop, rename = set(), {}
    for i, q in enumerate(nodes):
        if q.op_type != "QuantizeLinear" or q.input[0] not in outs:
            continue
        dqs = readers.get(q.output[0], [])
        if dqs and all(nodes[j].op_type == "DequantizeLinear" for j in dqs):  # only DQs read the Q: the pair can go
            drop.update([i, *dqs])
            rename.update({nodes[j].output[0]: q.input[0] for j in dqs})
    if not drop or any(o.name in rename for o in g.output):
        return  # nothing to undo, or the graph's output itself is a DQ: leave the file as the quantizer wrote it
    keep = [n for i, n in enumerate(nodes) if i not in drop]
    for n in keep:
        for k, name in enumerate(n.input):
            if name in rename:
                n.input[k] = rename[name]
    del g.node[:]
    g.node.extend(keep)
    onnx.save(m, str(path))


def quantize_int8(fp32_path, out_path, calib: np.ndarray, symmetric: bool, method: str = "minmax",
                  exclude_last: bool = True, float_nodes=()) -> Path:
    """Write a QDQ INT8 copy of ``fp32_path`` to ``out_path`` (atomically), ``float_nodes`` kept in float."""
    out_path = Path(out_path)
    with Int8Quantiser(fp32_path, out_path.parent, calib, symmetric, method, exclude_last) as q:
        q.check_names(float_nodes)
        return q.write(out_path, float_nodes)


def set_metadata(path, values: dict) -> None:
    """Set (add or replace) ``metadata_props`` entries of the ONNX file at ``path`` in place."""
    import onnx

    m = onnx.load(str(path))
    props = {p.key: p for p in m.metadata_props}
    for key, value in values.items():
        if key not in props:
            props[key] = m.metadata_props.add()
            props[key].key = key
        props[key].value = value if isinstance(value, str) else json.dumps(value)
    onnx.save(m, str(path))


class Judge:
    """The primary metric of the fp32 graph (evaluated once) and of each INT8 candidate, on the run's validation images."""

    def __init__(self, job, fp32_path: Path):
        from ..bench.evaluate import validation_batch
        from .onnx_export import evaluate_onnx

        self.task = job.task
        self.x, self.samples = validation_batch(job.cfg, self.task, job.options.eval_size or job.cfg.train.val_size)
        self.m32 = evaluate_onnx(fp32_path, self.task, self.x, self.samples)

    def __call__(self, candidate: Path) -> dict:
        from .onnx_export import evaluate_onnx

        m8 = evaluate_onnx(candidate, self.task, self.x, self.samples)
        key = self.task.primary_metric
        drop = (self.m32[key] - m8[key]) if self.task.higher_is_better else (m8[key] - self.m32[key])
        return {"eval_images": len(self.x), "fp32_metrics": self.m32, "int8_metrics": m8, "primary_metric": key, "drop": float(drop)}


def _sensitivity(job, q, calib: np.ndarray, calib_samples: list) -> dict:
    from .int8_sensitivity import measure_sensitivity, sensitivity_lines

    n = min(job.options.sensitivity_size, len(calib))
    record = measure_sensitivity(q, job.task, calib[:n], calib_samples[:n], job.options.sensitivity_units, job.log)
    for line in sensitivity_lines(record):
        job.log(line)
    return record


def _fall_back(job, q, judge: Judge, candidate: Path, first: dict, ranked: list, rec: dict) -> dict:
    """Keep the most sensitive units in float until the drop is within --max-drop (int8_fallback.py); the judgement kept."""
    import shutil

    from .int8_fallback import grow_float_nodes, p50_latency_ms

    o = job.options
    all_int8 = q.workdir_file("all-int8.onnx")
    shutil.copyfile(candidate, all_int8)
    fb = grow_float_nodes(q, judge, ranked, list(o.exclude_nodes), o.max_drop, o.max_float_nodes, candidate, job.log)
    added = fb["float_nodes"][len(o.exclude_nodes):]
    rec["fallback"] = {"met": fb["met"], "max_float_nodes": o.max_float_nodes, "added_float_nodes": added, "steps": fb["steps"],
                       "drop_all_int8": first["drop"]}
    rec["float_nodes"] = fb["float_nodes"]
    if fb["met"]:
        x1 = judge.x[:1]
        rec["latency_p50_ms"] = lat = p50_latency_ms({"fp32": job.fp32_path, "int8_all": all_int8, "int8": candidate}, x1)
        rec["latency_note"] = "this machine, ONNX Runtime CPU, batch 1, 3 interleaved rounds; edgekd bench on the device is the measurement"
        job.log(f"INT8 fallback: drop {first['drop']:+.4f} with every node quantized > --max-drop {o.max_drop}; kept {len(added)} "
                f"node(s) in float ({', '.join(added)}): drop {fb['judge']['drop']:+.4f} -> within budget; p50 here fp32 {lat['fp32']:.2f} ms, "
                f"int8 {lat['int8_all']:.2f} ms, mixed {lat['int8']:.2f} ms")
    return fb["judge"] or first


def _qat_record(job) -> dict:
    """For a QAD run (edgekd distill --qat-from): what it was tuned from, logged and kept in the record."""
    q = job.ckpt.get("qat")
    if not q:
        return {}
    key = job.task.primary_metric
    job.log(f"QAD checkpoint tuned from {q.get('from')}: that fp32 student scored {key} "
            f"{(q.get('fp32_metrics') or {}).get(key, float('nan')):.4f} on the run's validation images")
    return {"qat": {k: q.get(k) for k in ("from", "activations", "weights", "stack", "fp32_metrics")}}


def quantize_and_judge(job) -> dict:
    """Quantize to a candidate file, judge it (falling back to float nodes if needed), and only then let it replace model.int8.onnx."""
    from ..bench.evaluate import validation_batch
    from .onnx_export import failed_name

    o, fp32_path = job.options, job.fp32_path
    symmetric = "tensorrt" in job.cfg.target.runtimes
    calib, calib_samples = validation_batch(job.cfg, job.task, o.calib_size, split="train")  # calibrate on training data, judge on validation
    int8_path = job.run_dir / "model.int8.onnx"
    candidate = job.run_dir / f".{int8_path.name}.candidate"
    job.log(f"calibrating INT8 ({'symmetric s8s8 for TensorRT' if symmetric else 'u8s8 for CPU'}, {o.calib_method}) on {len(calib)} training images")
    rec = {"float_nodes": list(o.exclude_nodes), **_qat_record(job)}
    try:
        with Int8Quantiser(fp32_path, job.run_dir, calib, symmetric, o.calib_method) as q:
            q.check_names(o.exclude_nodes)
            judge = Judge(job, fp32_path)
            q.write(candidate, float_nodes=o.exclude_nodes)
            j = first = judge(candidate)
            if o.sensitivity or first["drop"] > o.max_drop:
                rec["sensitivity"] = _sensitivity(job, q, calib, calib_samples)
            if first["drop"] > o.max_drop and o.max_float_nodes > 0:
                j = _fall_back(job, q, judge, candidate, first, rec["sensitivity"]["units"], rec)
        ok = j["drop"] <= o.max_drop
        set_metadata(candidate, {"int8_float_nodes": rec["float_nodes"], "int8_drop": f"{j['drop']:.6g}",
                                 "int8_judged_on": f"{j['primary_metric']} on {j['eval_images']} validation images, max drop {o.max_drop}"})
        final = int8_path if ok else failed_name(int8_path)
        os.replace(candidate, final)
        if ok:
            failed_name(int8_path).unlink(missing_ok=True)
    finally:
        candidate.unlink(missing_ok=True)
    key, m32, m8 = j["primary_metric"], j["fp32_metrics"], j["int8_metrics"]
    job.log(f"wrote {final}; {key} on {j['eval_images']} validation images: fp32 {m32[key]:.4f}, int8 {m8[key]:.4f}, drop {j['drop']:+.4f} "
            f"(max {o.max_drop}, {len(rec['float_nodes'])} float nodes) -> {'ok' if ok else f'FAIL ({int8_path.name} left as it was)'}")
    return {"onnx": str(final), "precision": "int8", "symmetric": symmetric, "calib_images": len(calib), "calib_method": o.calib_method,
            **j, "max_drop": o.max_drop, "pass": ok, **rec}


def export_int8(job) -> Path:
    """The int8 precision step: model.int8.onnx, kept only when its metric drop is within --max-drop (after any float fallback)."""
    rec = job.add("int8", quantize_and_judge(job))
    if not rec["pass"]:
        o = job.options
        others = " or ".join(m for m in ("percentile", "entropy", "minmax") if m != o.calib_method)  # never the method in use
        if rec.get("fallback"):
            tried = f" even with {len(rec['float_nodes'])} node(s) kept in float (limit --max-float-nodes {o.max_float_nodes}; raise it)"
        elif rec.get("sensitivity"):
            top = rec["sensitivity"]["units"][0]
            tried = f" (no float fallback: --max-float-nodes 0; the most sensitive is {top['unit']}, see int8.sensitivity in export.json)"
        else:
            tried = ""
        job.failures.append(f"INT8 {rec['primary_metric']} drop {rec['drop']:.4f} exceeds --max-drop {o.max_drop}{tried}; "
                            f"calibrate on more images (--calib-size), try --calib-method {others}, fine-tune for INT8 with "
                            f"edgekd distill --qat-from {job.run_dir} (then export {job.run_dir / 'qat'}), or ship fp16")
    return Path(rec["onnx"])
