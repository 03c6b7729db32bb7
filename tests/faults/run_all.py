"""The long part of the fault-injection suite: inject faults into real edgekd processes and print the figures.

    PYTHONPATH=. python tests/faults/run_all.py --out runs/faults [--kills 5] [--fuzz 30] [--seed 0]

* SIGKILL at random steps of distill, then --resume: final weights and metrics compared with an uninterrupted run (bit for bit);
* SIGKILL at random moments of export: every file under a final name complete (onnx.checker) and the same as before;
* SIGKILL at random moments of compare, then the same command: finished runs kept untouched, the grid completes;
* a really full disk (a small tmpfs; root only, else skipped) while writing a checkpoint and an ONNX file;
* a read-only output folder (a read-only tmpfs; root only);
* the fuzz loop (tests/faults/faultlib.py) over truncated and random-byte .pt, .onnx, .mat, TOML and PNG inputs.

Writes OUT/figures.json; docs/reliability.md reports a run of it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import faultlib  # noqa: E402

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "EDGEKD_CACHE": "off"}
COMMON = ["--task", "depth", "--student-weights", "none", "--warmup-steps", "1", "--threads", "1", "--image-size", "64", "64",
          "--train-size", "16", "--val-size", "4", "--batch-size", "4", "--epochs", "3", "--workers", "0", "--device", "cpu", "--quiet"]
RUN = ["distill", "--teacher", "random:resnet18", "--spectral", "2", *COMMON]


def edgekd(*args, check=True) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, "-m", "edgekd", *map(str, args)], env=ENV, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise SystemExit(f"edgekd {' '.join(map(str, args))} failed ({p.returncode}): {p.stderr[-2000:]}")
    return p


def start(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edgekd", *map(str, args)], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _lines(p: Path) -> int:
    return len(p.read_text().splitlines()) if p.exists() else 0


def final_state(run: Path):
    import torch

    ck = torch.load(run / "last.pt", weights_only=True)
    metrics = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    return ck["student"], {k: v for k, v in metrics.items() if not k.startswith(("grad_", "weight_"))}


def kill_distill(out: Path, kills: int, rng) -> dict:
    """SIGKILL at a random step of 12, --resume, compare with the uninterrupted reference."""
    import torch

    ref = out / "ref"
    edgekd(*RUN, "--out", ref)
    ref_w, ref_m = final_state(ref)
    survived, steps = 0, []
    for k in range(kills):
        run, at = out / f"kill{k}", int(rng.integers(1, 12))
        p = start(*RUN, "--save-every-min", "0", "--out", run)
        while p.poll() is None and _lines(run / "steps.jsonl") < at:
            time.sleep(0.01)
        p.send_signal(signal.SIGKILL)
        p.wait()
        edgekd("distill", "--resume", "--threads", "1", "--out", run, "--quiet")
        w, m = final_state(run)
        same = m == ref_m and all(torch.equal(w[x], ref_w[x]) for x in ref_w)
        survived += same
        steps.append(at)
    return {"fault": "SIGKILL during distill, then --resume", "injected": kills, "survived": survived, "at_steps": steps,
            "criterion": "final weights and metrics bit-identical to an uninterrupted run"}


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def kill_export(out: Path, kills: int, rng) -> dict:
    """SIGKILL at a random moment of export (fp32 + fp16): the files under final names stay complete and unchanged."""
    import onnx

    run = out / "ref"
    t0 = time.monotonic()
    edgekd("export", run)
    took = time.monotonic() - t0
    good = {p.name: _digest(p) for p in run.glob("model*.onnx")}
    survived, temps = 0, 0
    for _ in range(kills):
        p = start("export", run)
        time.sleep(float(rng.uniform(0.5, took)))
        p.send_signal(signal.SIGKILL)
        p.wait()
        ok = True
        for f in run.glob("model*.onnx"):
            try:
                onnx.checker.check_model(onnx.load(f))
            except Exception:
                ok = False
            ok &= good.get(f.name) == _digest(f) or f.name.endswith(".failed.onnx")
        json.loads((run / "export.json").read_text())
        survived += ok
        temps += len(list(run.glob(".*.tmp")))
        for t in run.glob(".*.tmp"):
            t.unlink()
    return {"fault": "SIGKILL during export", "injected": kills, "survived": survived,
            "criterion": "every model*.onnx passes onnx.checker and equals the file before; export.json parses",
            "hidden_temp_files_left": temps}


def kill_compare(out: Path, kills: int, rng) -> dict:
    """SIGKILL at random moments of a 3-cell x 2-seed compare; rerun the same command after each kill."""
    cmp = out / "cmp"
    args = ["compare", "--teachers", "none,random:resnet18", "--projections", "inverted,traditional", "--seeds", "2", *COMMON,
            "--out", cmp]
    kept, finished_seen = True, {}
    for _ in range(kills):
        p = start(*args)
        time.sleep(float(rng.uniform(5, 40)))
        p.send_signal(signal.SIGKILL)
        p.wait()
        for s in cmp.glob("runs/*/seed*/summary.json"):
            if s in finished_seen and finished_seen[s] != s.stat().st_mtime_ns:
                kept = False
            finished_seen.setdefault(s, s.stat().st_mtime_ns)
    edgekd(*args)
    for s, mtime in finished_seen.items():
        kept &= s.stat().st_mtime_ns == mtime
    rows = faultlib_rows(cmp)
    return {"fault": "SIGKILL during compare, then the same command", "injected": kills, "survived": kills if kept and rows == 6 else 0,
            "criterion": "runs finished before a kill are never rewritten; the grid completes with all 6 runs",
            "finished_before_last_rerun": len(finished_seen), "results": rows}


def faultlib_rows(cmp: Path) -> int:
    return len([x for x in (cmp / "results.jsonl").read_text().splitlines() if x.strip()]) if (cmp / "results.jsonl").exists() else 0


def _mount(path: Path, *opts) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(opts), "tmpfs", str(path)], capture_output=True).returncode == 0


def _umount(path: Path) -> None:
    subprocess.run(["umount", str(path)], capture_output=True)


def full_disk(out: Path) -> list[dict]:
    """A tmpfs with room for one checkpoint: the second write fails; an ONNX export into a full tmpfs."""
    import torch

    rows = []
    small = out / "tmpfs"
    if os.geteuid() != 0 or not _mount(small, "size=40m"):
        return [{"fault": "ENOSPC on a real full disk", "skipped": "needs root to mount a tmpfs"}]
    try:
        run = small / "run"
        p = edgekd(*RUN, "--save-every-min", "0", "--epochs", "3", "--out", run, check=False)
        err = [x for x in p.stderr.splitlines() if x.startswith("error:")]
        loadable = torch.load(run / "last.pt", weights_only=True)["step"] >= 1
        rows.append({"fault": "ENOSPC writing a checkpoint (40 MB tmpfs)", "injected": 1,
                     "survived": int(p.returncode == 2 and len(err) == 1 and "ENOSPC" in err[0] and loadable), "message": err[:1]})
        shutil.rmtree(run)
        shutil.copytree(out / "ref", run, ignore=shutil.ignore_patterns("model*", "*.engine", "report", "bench", "last.pt", "*.lock"))
        filler = small / "filler"  # leave less room than one ONNX file
        free = shutil.disk_usage(small).free
        filler.write_bytes(b"\0" * max(0, free - 1_000_000))
        p = edgekd("export", run, "--precision", "fp32", check=False)
        err = [x for x in p.stderr.splitlines() if x.startswith("error:")]
        rows.append({"fault": "ENOSPC writing an ONNX file", "injected": 1,
                     "survived": int(p.returncode == 2 and len(err) == 1 and "ENOSPC" in err[0] and not (run / "model.onnx").exists()),
                     "message": err[:1]})
    finally:
        _umount(small)
    return rows


def read_only(out: Path) -> dict:
    ro = out / "ro"
    if os.geteuid() != 0 or not _mount(ro, "ro,size=1m"):
        return {"fault": "read-only output folder", "skipped": "needs root to mount a read-only tmpfs"}
    try:
        p = edgekd(*RUN, "--out", ro / "run", check=False)
        err = p.stderr.strip().splitlines()
        ok = p.returncode == 2 and len(err) == 1 and "not writable" in err[0]
    finally:
        _umount(ro)
    return {"fault": "read-only output folder (read-only tmpfs)", "injected": 1, "survived": int(ok), "message": err[:1]}


def fuzz(out: Path, n_random: int, seed: int) -> dict:
    run = out / "ref"
    inputs = faultlib.corpus(out / "corpus", run / "best.pt", run / "model.onnx")
    outcomes = faultlib.fuzz(inputs, out / "fuzz", n_random=n_random, seed=seed)
    by_kind = {}
    for o in outcomes:
        by_kind.setdefault(o.kind, {"refused": 0, "accepted": 0, "failed": 0})[o.verdict] += 1
    return {"fault": "truncated / random-byte inputs", "tried": len(outcomes), "by_kind": by_kind,
            "refused": sum(o.verdict == "refused" for o in outcomes), "accepted": sum(o.verdict == "accepted" for o in outcomes),
            "failed": [o.__dict__ for o in outcomes if o.verdict == "failed"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/faults"))
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--fuzz", type=int, default=30, help="random-byte mutations per input (plus 6 truncations)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    import numpy as np

    if a.out.exists():
        shutil.rmtree(a.out)
    a.out.mkdir(parents=True)
    rng = np.random.default_rng(a.seed)
    t0 = time.monotonic()
    figures = [kill_distill(a.out, a.kills, rng), kill_export(a.out, a.kills, rng), kill_compare(a.out, max(2, a.kills // 2), rng),
               *full_disk(a.out), read_only(a.out)]
    fz = fuzz(a.out, a.fuzz, a.seed)
    report = {"faults": figures, "fuzz": fz, "seconds": round(time.monotonic() - t0)}
    (a.out / "figures.json").write_text(json.dumps(report, indent=2))
    print("| fault | injected | survived |\n|---|---|---|")
    for f in figures:
        print(f"| {f['fault']} | {f.get('injected', '-')} | {f.get('survived', f.get('skipped'))} |")
    print(f"\nbad inputs tried: {fz['tried']}; refused cleanly (exit 2, one line, nothing written): {fz['refused']}; "
          f"accepted as still valid: {fz['accepted']}; failed: {len(fz['failed'])}")
    print(json.dumps(fz["by_kind"]))
    print(f"{report['seconds']} s; figures in {a.out / 'figures.json'}")


if __name__ == "__main__":
    main()
