"""INT8 sensitivity: the error each quantized node (or block of nodes) adds on its own.

Each *unit* (a node, or a block of nodes when the graph has more than ``max_units``) is quantized
alone, every other node left in float, with the ranges of the one calibration
(:class:`~edgekd.export.quantize.Int8Quantiser`); the graph's output on the calibration images is
compared with the fp32 graph's.  ``output_error`` is the energy of that difference relative to the
fp32 output's (``sum((y8 - y32)^2) / sum(y32^2)``; 1e-4 is 40 dB of signal to noise), and
``metric_drop`` the primary metric's drop on the same images (free: the metrics are computed from the
same outputs).  Measured on training images, so that the fallback that uses the ranking is judged on
validation images it did not choose from.
"""

from __future__ import annotations

from collections import Counter, OrderedDict

import numpy as np

MAX_UNITS = 64  # above this many quantizable nodes, nodes are measured by block (their name's path prefix)


def units_of(nodes: list[tuple[str, str]], max_units: int = MAX_UNITS) -> list[dict]:
    """Group (name, op) nodes into at most ``max_units`` units in graph order: single nodes, else the
    deepest name-path prefix (``/encoder/blocks.2/...``, as torch.onnx names nodes) that gives few enough."""
    if len(nodes) <= max_units:
        return [{"unit": name, "nodes": [name], "ops": op} for name, op in nodes]
    paths = [name.strip("/").split("/")[:-1] for name, _ in nodes]
    depth = 0
    for d in range(1, max(map(len, paths), default=0) + 1):
        if len({tuple(p[:d]) for p in paths}) > max_units:
            break
        depth = d
    groups: OrderedDict = OrderedDict()
    for (name, op), path in zip(nodes, paths):
        key = "/" + "/".join(path[:depth]) if depth else "/"
        groups.setdefault(key, []).append((name, op))
    return [{"unit": key, "nodes": [n for n, _ in members], "ops": _op_summary([op for _, op in members])}
            for key, members in groups.items()]


def _op_summary(ops: list[str]) -> str:
    return ", ".join(f"{op}x{n}" if n > 1 else op for op, n in Counter(ops).most_common())


def output_error(y: np.ndarray, ref: np.ndarray) -> float:
    """Energy of ``y - ref`` relative to the energy of ``ref``."""
    ref64 = ref.astype(np.float64)
    return float(np.sum((y.astype(np.float64) - ref64) ** 2) / max(np.sum(ref64**2), 1e-30))


def measure_sensitivity(quantiser, task, x: np.ndarray, samples: list, max_units: int = MAX_UNITS, log=print) -> dict:
    """Quantize each unit alone, rank by the error it adds (largest first); the record for export.json."""
    from .onnx_export import outputs_and_metrics

    units = units_of(quantiser.nodes, max_units)
    key = task.primary_metric
    ref, m32 = outputs_and_metrics(quantiser.fp32_path, task, x, samples)
    probe = quantiser.workdir_file("sensitivity.onnx")
    log(f"INT8 sensitivity: quantizing each of {len(units)} {'nodes' if len(units) == len(quantiser.nodes) else 'blocks'} "
        f"({len(quantiser.nodes)} quantizable nodes) alone on {len(x)} calibration images")
    for unit in units:
        quantiser.write(probe, only_nodes=unit["nodes"])
        y, m8 = outputs_and_metrics(probe, task, x, samples)
        drop = (m32[key] - m8[key]) if task.higher_is_better else (m8[key] - m32[key])
        unit.update(output_error=output_error(y, ref), metric_drop=float(drop))
    ranked = sorted(units, key=lambda u: (-u["output_error"], -u["metric_drop"]))
    return {"images": len(x), "split": "train", "primary_metric": key, "units_are": "nodes" if len(units) == len(quantiser.nodes) else "blocks",
            "quantizable_nodes": len(quantiser.nodes), "units": ranked}


def sensitivity_lines(record: dict, top: int = 10) -> list[str]:
    """The table for the log: the ``top`` most sensitive units."""
    key = record["primary_metric"]
    lines = [f"  {'rank':>4}  {'output error':>12}  {key + ' drop':>10}  {'nodes':>5}  unit (ops)"]
    for i, u in enumerate(record["units"][:top], 1):
        lines.append(f"  {i:>4}  {u['output_error']:>12.3e}  {u['metric_drop']:>+10.4f}  {len(u['nodes']):>5}  {u['unit']} ({u['ops']})")
    rest = len(record["units"]) - top
    if rest > 0:
        lines.append(f"  ... {rest} more in export.json (int8.sensitivity)")
    return lines
