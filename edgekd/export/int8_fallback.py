"""Automatic float fallback: keep the most sensitive nodes in float until the INT8 drop is within budget.

Units are taken in the order of :mod:`~edgekd.export.int8_sensitivity` (largest error first); each
step adds one unit's nodes to ``nodes_to_exclude``, writes the QDQ file again (the one calibration's
ranges still hold: ONNX Runtime calibrates the float graph) and judges it on the validation images,
until the drop is within ``--max-drop`` or one more unit would keep more than ``--max-float-nodes``
nodes in float.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

DEFAULT_MAX_FLOAT_NODES = 10  # a few float nodes cost little speed; many make the INT8 file pointless


def grow_float_nodes(quantiser, judge, ranked_units: list[dict], start: list[str], max_drop: float, max_float_nodes: int,
                     candidate: Path, log=print) -> dict:
    """Exclude units in ranked order until ``judge(candidate)['drop'] <= max_drop``; the steps taken and the outcome.

    ``candidate`` holds the last file written (the best found when the budget is met, else the one with
    the most float nodes); ``start`` are the nodes the user keeps in float already.
    """
    float_nodes, steps = list(start), []
    for unit in ranked_units:
        new = [n for n in unit["nodes"] if n not in float_nodes]
        if not new:
            continue
        if len(float_nodes) - len(start) + len(new) > max_float_nodes:
            log(f"INT8 fallback: the next unit {unit['unit']} ({len(new)} nodes) would keep more than --max-float-nodes "
                f"{max_float_nodes} in float; stopping")
            break
        float_nodes += new
        quantiser.write(candidate, float_nodes=float_nodes)
        j = judge(candidate)
        steps.append({"added": unit["unit"], "float_nodes": len(float_nodes), "drop": j["drop"]})
        log(f"INT8 fallback: + {unit['unit']} in float ({len(float_nodes)} float nodes): drop {j['drop']:+.4f}")
        if j["drop"] <= max_drop:
            return {"met": True, "float_nodes": float_nodes, "steps": steps, "judge": j, "max_float_nodes": max_float_nodes}
    return {"met": False, "float_nodes": float_nodes, "steps": steps, "judge": j if steps else None, "max_float_nodes": max_float_nodes}


def p50_latency_ms(paths: dict, x1: np.ndarray, rounds: int = 3, min_time: float = 0.3) -> dict:
    """Median over ``rounds`` interleaved rounds of each file's p50 batch-1 latency (ONNX Runtime CPU, ms).

    Interleaved because a shared machine's speed drifts between seconds: every file is timed in every round.
    """
    from .onnx_export import ort_session

    sessions = {name: ort_session(p) for name, p in paths.items()}
    per_round: dict = {name: [] for name in paths}
    for _ in range(rounds):
        for name, sess in sessions.items():
            for _ in range(3):
                sess.run(None, {"input": x1})  # warm-up
            times, t_end = [], time.perf_counter() + min_time
            while len(times) < 5 or time.perf_counter() < t_end:
                t0 = time.perf_counter()
                sess.run(None, {"input": x1})
                times.append(time.perf_counter() - t0)
            per_round[name].append(float(np.median(times)) * 1e3)
    return {name: float(np.median(v)) for name, v in per_round.items()}
