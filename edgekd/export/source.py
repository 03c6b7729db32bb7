"""What every file ``edgekd export`` writes records of the checkpoint it was made from.

Which checkpoint that is (best.pt, last.pt, an unfinished run) is :mod:`edgekd.models.run`'s rule.
"""

from __future__ import annotations

from pathlib import Path

from ..bench.provenance import sha256_file


def checkpoint_source(ckpt_path: Path, ckpt: dict) -> dict:
    """What every exported file records of its checkpoint: name, step and sha256 (bench/provenance.py reads it)."""
    return {"checkpoint": Path(ckpt_path).name, "checkpoint_step": ckpt.get("step"), "checkpoint_sha256": sha256_file(ckpt_path)}
