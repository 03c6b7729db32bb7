"""Where an exported file and a bench record come from, and whether they still match the run (torch-free).

Every file ``edgekd export`` writes carries the checkpoint it was made from: its name, training
step and sha256, in the ONNX metadata (``checkpoint``, ``checkpoint_step``, ``checkpoint_sha256``)
and in ``export.json``'s per-file record, which also holds the file's own sha256 (a TensorRT engine
has no metadata of its own).  The trainer keeps ``checkpoints.json`` beside its checkpoints (name ->
step, epoch, sha256), so the step a checkpoint holds *now* is known without torch.

* A file is **stale** when the checkpoint it was made from has changed since (a resumed run wrote a
  new ``best.pt``) or is gone: it no longer shows the run.
* A bench record is **stale** when the file it measured has changed since (re-exported): its numbers
  belong to an older file.

Only hashlib, json and pathlib: ``edgekd bench`` and ``edgekd bench RUN_DIR`` run on a device without
torch or numpy.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

from ..models.run import checkpoint_steps  # the run's checkpoint index (torch-free)


def sha256_file(path) -> str:
    """The file's sha256 (hex), read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def now_utc() -> str:
    """The time a record is written (ISO 8601, UTC, microseconds: two benches within a second stay ordered): what
    "newest" is judged by."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def export_records(run_dir) -> dict:
    """``export.json``'s per-file records {file name: record} ({} when absent or unreadable)."""
    arts = _read_json(Path(run_dir) / "export.json").get("artefacts")
    return arts if isinstance(arts, dict) else {}


def file_provenance(path, card=None) -> dict:
    """What ``path`` is and what it was made from: its sha256 and size, and the checkpoint's name, step and
    sha256 from the file's model card ``card`` (edgekd/card.py) or, failing that, from ``export.json`` beside it
    (only when that record's sha256 is this file's)."""
    path = Path(path)
    sha = sha256_file(path)
    prov = {"file": path.name, "sha256": sha, "bytes": path.stat().st_size, "checkpoint": None, "checkpoint_step": None,
            "checkpoint_sha256": None}
    made_from = card.source if card is not None else {}
    if made_from.get("checkpoint_sha256"):
        step = made_from.get("checkpoint_step")
        prov.update(checkpoint=made_from.get("checkpoint"), checkpoint_step=int(step) if str(step).isdigit() else None,
                    checkpoint_sha256=made_from["checkpoint_sha256"])
        return prov
    rec = export_records(path.parent).get(path.name) or {}
    if rec.get("sha256") == sha:
        prov.update(checkpoint=Path(rec["checkpoint"]).name if rec.get("checkpoint") else None,
                    checkpoint_step=rec.get("checkpoint_step"), checkpoint_sha256=rec.get("checkpoint_sha256"))
    return prov


def stale_file(run_dir, prov: dict) -> str | None:
    """Why the file described by ``prov`` (:func:`file_provenance`) no longer matches the run's checkpoint, or None."""
    run_dir = Path(run_dir)
    name, made_from = prov.get("checkpoint"), prov.get("checkpoint_sha256")
    if not name or not made_from:
        return "unknown origin: no checkpoint hash recorded (exported by an older edgekd); export the run again"
    ckpt = run_dir / name
    if not ckpt.exists():
        return f"made from {name}, which is no longer in the run"
    known = checkpoint_steps(run_dir).get(name) or {}
    current = sha256_file(ckpt)  # always hashed: checkpoints.json only says which step a hash is
    if current == made_from:
        return None
    now = f" (now step {known['step']})" if known.get("sha256") == current and known.get("step") is not None else ""
    return f"made from {name} at step {prov.get('checkpoint_step')}; {name} has changed since{now}: export the run again"


def stale_bench(record: dict, file_path) -> str | None:
    """Why bench ``record`` no longer describes ``file_path`` (re-exported since, or gone), or None."""
    file_path = Path(file_path)
    measured = (record.get("file") or {}).get("sha256")
    if not file_path.exists():
        return f"{file_path.name} is gone"
    if not measured:
        return "no file hash in the record (benched by an older edgekd): bench it again"
    if measured != sha256_file(file_path):
        return f"{file_path.name} has changed since it was benched: bench it again"
    return None


def _when(record: dict, source: Path) -> str:
    """The record's own time, else its file's modification time (older records carry none)."""
    if record.get("measured_at"):
        return str(record["measured_at"])
    return datetime.fromtimestamp(source.stat().st_mtime, timezone.utc).isoformat(timespec="microseconds")


def bench_records(run_dir) -> dict:
    """The newest ``edgekd bench --json`` record of each model file in ``run_dir`` (and ``run_dir/bench/``),
    by file name; each record gains ``_source`` (its JSON file) and ``_when``."""
    run_dir = Path(run_dir)
    newest: dict = {}
    for f in sorted(run_dir.glob("*.json")) + sorted(run_dir.glob("bench/*.json")):
        r = _read_json(f)
        if not ("latency" in r and "environment" in r and "model" in r):
            continue
        r = {**r, "_source": str(f), "_when": _when(r, f)}
        name = Path(r["model"]).name
        if name not in newest or r["_when"] >= newest[name]["_when"]:
            newest[name] = r
    return newest


def run_files(run_dir) -> dict:
    """Every model file in ``run_dir`` (``model*.onnx``, ``model*.engine``; failed ones left out) with its
    provenance and ``stale`` (None or why), for ``edgekd report`` and ``edgekd bench RUN_DIR``.

    ONNX metadata is read from export.json's record (no onnxruntime session is opened here); a file whose
    sha256 does not match its record is described by its hash alone and reported as of unknown origin.
    """
    run_dir = Path(run_dir)
    out = {}
    for f in sorted(run_dir.glob("model*.onnx")) + sorted(run_dir.glob("model*.engine")):
        if ".failed." in f.name:
            continue
        prov = file_provenance(f)
        prov["stale"] = stale_file(run_dir, prov)
        out[f.name] = prov
    return out


def same_data(a: dict | None, b: dict | None) -> bool:
    """Two accuracy passes measured on the same images (their ``data_fingerprint``s: the same model inputs)."""
    return bool(a and b and a.get("inputs_sha256") and a.get("inputs_sha256") == b.get("inputs_sha256")
                and a.get("images") == b.get("images"))
