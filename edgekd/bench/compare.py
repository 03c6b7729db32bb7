"""Two bench results side by side, or refused as incomparable (``edgekd bench --compare-to OLD.json``).

Latencies of two runs mean something together only on the same device in the same state: a governor
of ``powersave`` against ``performance``, another Jetson power mode, another JetPack, driver or
runtime version, another thread count, or a run that throttled, each changes the numbers more than
most optimisations do.  :func:`incomparable` names every such key.  What a comparison is for (another
model, precision or backend on that device) may differ and is named beside the ratios.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import EdgekdError

# Environment keys of the device and its software stack: they must match (None on both sides matches:
# neither machine exposes it).  The runtime's version and providers must match when the backend is the same.
DEVICE_KEYS = ("arch", "cpu", "cores", "cores_allowed", "cpu_governor", "threads", "power_mode", "l4t", "gpu", "nvidia_driver",
               "cuda_driver")
RUNTIME_KEYS = ("runtime", "providers")
# What a comparison is for: these may differ, and are named beside the ratios.
COMPARED_KEYS = ("model", "precision", "backend", "input")


def load_result(path) -> dict:
    """A JSON written by ``edgekd bench --json``; one line when it is not one."""
    p = Path(path)
    if not p.is_file():
        raise EdgekdError(f"--compare-to {p}: no such file; give a JSON written by edgekd bench --json")
    try:
        r = json.loads(p.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise EdgekdError(f"--compare-to {p} is not valid JSON ({e}); give a JSON written by edgekd bench --json") from None
    if not isinstance(r, dict) or "latency" not in r or "environment" not in r:
        raise EdgekdError(f"--compare-to {p} is not an edgekd bench result (no latency or environment); give a JSON written by edgekd bench --json")
    return r


def _throttled(r: dict) -> bool:
    return any((v.get("throttling") or {}).get("throttled") for v in r["latency"].values())


def incomparable(old: dict, new: dict) -> list[str]:
    """Why ``new`` cannot be compared with ``old`` (one phrase per reason); empty when it can."""
    oe, ne = old["environment"], new["environment"]
    keys = DEVICE_KEYS + (RUNTIME_KEYS if oe.get("backend") == ne.get("backend") else ())
    why = [f"{k} differs ({oe.get(k)} vs {ne.get(k)})" for k in keys if oe.get(k) != ne.get(k)]
    for name, r in (("the old run", old), ("this run", new)):
        if _throttled(r):
            why.append(f"{name} throttled (its CPU clock dropped during the timed loop)")
    return why


def _compared(old: dict, new: dict) -> dict:
    both = lambda r, k: r.get(k, r["environment"].get(k))  # noqa: E731  (top-level, else environment)
    return {k: [both(old, k), both(new, k)] for k in COMPARED_KEYS if both(old, k) != both(new, k)}


def compare_results(old: dict, new: dict, old_path: str = "") -> dict:
    """Ratios new/old of p50 and p90 per shared batch size, or the reasons they would mislead."""
    why = incomparable(old, new)
    out = {"to": str(old_path), "comparable": not why, "incomparable": why, "differs_in": _compared(old, new)}
    if not why:
        out["ratios"] = {b: {"p50": v["p50_ms"] / old["latency"][b]["p50_ms"], "p90": v["p90_ms"] / old["latency"][b]["p90_ms"]}
                         for b, v in new["latency"].items() if b in old["latency"] and old["latency"][b]["p50_ms"] > 0}
    return out


def comparison_lines(c: dict) -> list[str]:
    if not c["comparable"]:
        return [f"incomparable with {c['to']}: " + "; ".join(c["incomparable"])]
    what = "; ".join(f"{k} {a} -> {b}" for k, (a, b) in c["differs_in"].items()) or "same model, precision and backend"
    ratios = ", ".join(f"{b} p50 x{r['p50']:.3f}, p90 x{r['p90']:.3f}" for b, r in c["ratios"].items()) or "no batch size in common"
    return [f"vs {c['to']} ({what}): {ratios}"]
