"""Where each node of a model ran: the runtime's own account, collected apart from the timed loop.

A runner's ``placement(x)`` (``runners/base.py``) returns::

    {"source": "how it was found", "requested": "the unit asked for",
     "units": {"CPUExecutionProvider": {"nodes": 128, "time_share": 1.0}, ...},
     "nodes": 128,                                   # all nodes counted
     "precisions": {"u8": {"nodes": 66, "time_share": 0.9}, ...}}   # optional (OpenVINO)

``time_share`` is the unit's share of the summed kernel time (None where the runtime times nothing).
ONNX Runtime: its profiler (``SessionOptions.enable_profiling``) writes a Chrome trace whose
``cat == "Node"`` events carry ``args.provider`` and ``dur`` (microseconds).  On GPU providers that
``dur`` is the host's launch time, not the kernel's, so the time shares there are only indicative.
"""

from __future__ import annotations

import json


def ort_trace_placement(events: list[dict], requested: str) -> dict:
    """Nodes and kernel-time share per execution provider from an ONNX Runtime profile's events.

    The first ``model_run`` (arena allocation, first-touch) is left out of the time shares when
    there are later runs; every node that ran at all is counted.
    """
    runs = sorted(e["ts"] for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")
    after = runs[1] if len(runs) > 1 else float("-inf")
    nodes: dict[str, str] = {}
    time_us: dict[str, float] = {}
    for e in events:
        provider = (e.get("args") or {}).get("provider")
        if e.get("cat") != "Node" or not provider:
            continue
        nodes[e["name"]] = provider
        if e["ts"] >= after:
            time_us[provider] = time_us.get(provider, 0.0) + float(e.get("dur", 0))
    return {"source": "onnxruntime profiler", "requested": requested, "nodes": len(nodes), "units": _units(nodes.values(), time_us)}


def _units(names, time_us: dict[str, float]) -> dict:
    counts: dict[str, int] = {}
    for n in names:
        counts[n] = counts.get(n, 0) + 1
    total = sum(time_us.values())
    return {u: {"nodes": c, "time_share": (time_us.get(u, 0.0) / total) if total > 0 else None}
            for u, c in sorted(counts.items(), key=lambda kv: -kv[1])}


def read_ort_trace(path) -> list[dict]:
    with open(path) as f:
        return json.load(f)


def openvino_placement(ops: list[tuple[str, str, str]], device: str) -> dict:
    """OpenVINO runtime-graph ops ``(layer type, runtime precision, exec time in us or "not_executed")`` per precision.

    The CPU plugin runs every op on its one device: what differs per op is the precision it ran in
    (an INT8 model's convolutions in u8/i8, the rest in f32).  Constants, inputs and outputs are not ops that run.
    """
    ran = [(p, int(t) if str(t).isdigit() else 0) for kind, p, t in ops if kind not in ("Const", "Input", "Output")]
    time_us: dict[str, float] = {}
    for p, t in ran:
        time_us[p] = time_us.get(p, 0.0) + t
    return {"source": "openvino runtime model (PERF_COUNT)", "requested": device, "nodes": len(ran),
            "units": {device: {"nodes": len(ran), "time_share": 1.0 if ran else None}},
            "precisions": _units([p for p, _ in ran], time_us)}


def placement_warning(p: dict | None) -> str | None:
    """One line when less than all of the model ran on the unit that was asked for."""
    if not p or not p.get("nodes"):
        return None
    want = p["requested"]
    on = (p["units"].get(want) or {}).get("nodes", 0)
    if on >= p["nodes"]:
        return None
    others = ", ".join(f"{v['nodes']} on {u}" + (f" ({v['time_share']:.0%} of kernel time)" if v.get("time_share") is not None else "")
                       for u, v in p["units"].items() if u != want)
    return f"only {on} of {p['nodes']} nodes ran on {want}: {others}"


def placement_line(p: dict) -> str:
    """The table's line: nodes (and kernel-time share) per unit, and per precision where the runtime says."""
    parts = [f"{u} {v['nodes']}/{p['nodes']} nodes" + (f" ({v['time_share']:.0%} of kernel time)" if v.get("time_share") is not None else "")
             for u, v in p["units"].items()]
    line = "; ".join(parts)
    if p.get("precisions"):
        line += "; precision " + ", ".join(f"{k} {v['nodes']}" + (f" ({v['time_share']:.0%})" if v.get("time_share") is not None else "")
                                          for k, v in p["precisions"].items())
    return line
