"""Shared by the fault-injection tests and ``tests/faults/run_all.py``: real input files, their mutations, and how a
command's answer to each is judged (refused cleanly, accepted as still valid, or failed)."""

from __future__ import annotations

import shutil
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

TINY = ["--image-size", "64", "64", "--train-size", "8", "--val-size", "4", "--batch-size", "4", "--epochs", "1",
        "--workers", "0", "--device", "cpu", "--quiet"]


def invoke(args) -> tuple[int, str, str]:
    """``edgekd ARGS`` in-process: (exit code, stdout, stderr); an escaped exception is exit 99 with its traceback."""
    from click.testing import CliRunner

    from edgekd.cli import cli

    res = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)
    err = res.stderr if getattr(res, "stderr_bytes", None) is not None else ""
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        err += "".join(traceback.format_exception(res.exception))
        return 99, res.stdout, err
    return res.exit_code, res.stdout, err


def tree(*roots) -> dict:
    """Every file under ``roots`` with its size and modification time (what 'nothing was written' compares)."""
    out = {}
    for root in roots:
        for p in sorted(Path(root).rglob("*")):
            if p.is_file():
                out[str(p)] = (p.stat().st_size, p.stat().st_mtime_ns)
    return out


# ----------------------------------------------------------------------------- real inputs
def write_nyu_mat(folder: Path) -> Path:
    import h5py

    folder.mkdir(parents=True, exist_ok=True)
    n, h, w = 4, 12, 16
    rng = np.random.default_rng(0)
    p = folder / "nyu_depth_v2_labeled.mat"
    with h5py.File(p, "w") as f:  # MATLAB's column-major layout, as h5py sees it
        f["images"] = (rng.random((n, h, w, 3)) * 255).astype(np.uint8).transpose(0, 3, 2, 1)
        f["depths"] = rng.uniform(0.5, 9.5, (n, h, w)).astype(np.float32).transpose(0, 2, 1)
    (folder / "train.txt").write_text("1 2 3\n")
    (folder / "test.txt").write_text("4\n")
    return p


def write_depth_list(folder: Path, depth=None) -> Path:
    """A depth-list dataset (train.csv / test.csv, 16-bit depth PNGs in mm); returns the first training depth PNG."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 2), ("test", 1)):
        rows = ["rgb,depth"]
        for i in range(n):
            Image.fromarray((rng.random((16, 16, 3)) * 255).astype(np.uint8)).save(folder / f"{split}{i}.png")
            d = np.full((16, 16), 2500 + i, np.uint16) if depth is None else depth
            Image.fromarray(d).save(folder / f"{split}{i}_d.png")
            rows.append(f"{split}{i}.png,{split}{i}_d.png")
        (folder / f"{split}.csv").write_text("\n".join(rows) + "\n")
    return folder / "train0_d.png"


PROFILE = 'target = "x86-server"\n[model]\nstudent = "mobilenetv2_100"\n[train]\nepochs = 2\nlr = 3e-4\n[data]\nimage_size = [64, 64]\n'


@dataclass
class Input:
    """A real file, and the command that reads it (``{f}`` is the mutated file, ``{d}`` its folder)."""

    kind: str
    source: Path
    command: list
    files: list = field(default_factory=list)  # other files the command needs beside it (copied along)


def corpus(root: Path, checkpoint: Path, onnx_model: Path) -> list[Input]:
    """The real inputs the fuzz loop mutates: a trained checkpoint, its ONNX export, a NYUv2 .mat, a profile, a depth PNG."""
    root.mkdir(parents=True, exist_ok=True)
    mat = write_nyu_mat(root / "nyu")
    png = write_depth_list(root / "depthlist")
    (root / "profile.toml").write_text(PROFILE)
    return [
        Input("pt", checkpoint, ["export", "{f}"]),
        Input("onnx", onnx_model, ["bench", "{f}", "--no-accuracy", "--min-iters", "1", "--min-time", "0", "--warmup-iters", "0",
                                   "--warmup-time", "0", "--quiet"]),
        Input("mat", mat, ["data", "inspect", "{f}", "--task", "depth"], ["train.txt", "test.txt"]),
        Input("toml", root / "profile.toml", ["distill", "--profile", "{f}", "--print-config"]),
        Input("png", png, ["data", "inspect", "{d}", "--task", "depth"],
              ["train.csv", "test.csv", "train0.png", "train1.png", "train1_d.png", "test0.png", "test0_d.png"]),
    ]


def mutations(data: bytes, n_random: int, seed: int) -> list[tuple[str, bytes]]:
    """Truncations (empty, one byte, 10/50/90%, all but the last byte) and ``n_random`` random-byte mutations."""
    rng = np.random.default_rng(seed)
    out = [("empty", b""), ("1 byte", data[:1])]
    out += [(f"cut {int(100 * f)}%", data[: int(len(data) * f)]) for f in (0.1, 0.5, 0.9)]
    out.append(("cut last byte", data[:-1]))
    for k in range(n_random):
        buf = bytearray(data)
        count = int(rng.integers(1, 17))
        where = rng.integers(0, len(buf), count)
        buf_np = np.frombuffer(bytes(buf), np.uint8).copy()
        buf_np[where] = rng.integers(0, 256, count)
        out.append((f"{count} random bytes #{k}", buf_np.tobytes()))
    return out


@dataclass
class Outcome:
    kind: str
    mutation: str
    verdict: str  # refused | accepted | failed
    detail: str


def judge(code: int, out: str, err: str, written: bool) -> tuple[str, str]:
    """refused: exit 2, one line 'error: ...', no traceback, nothing written; accepted: exit 0 (the file is still valid);
    anything else failed."""
    lines = err.strip().splitlines()
    # export's documented answer to weights that load but fail a check (finite, yet overflowing fp16): the checked
    # files are written, the failing one kept as *.failed.onnx for inspection, exit 2
    kept_failed = code == 2 and len(lines) == 1 and "failing ones kept as *.failed.*" in lines[0]
    if written and code != 0 and not kept_failed:
        return "failed", "a refused input left files behind: " + (lines[-1] if lines else "")
    if code == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err + out:
        return "refused", lines[0]
    if code == 0 and "Traceback" not in err + out:
        return "accepted", "still a valid file"
    return "failed", f"exit {code}: " + " | ".join(lines[-3:])


def fuzz(inputs: list[Input], work: Path, n_random: int = 8, seed: int = 0) -> list[Outcome]:
    """Every mutation of every input through the command that reads it."""
    outcomes = []
    for inp in inputs:
        data = inp.source.read_bytes()
        for j, (name, mutated) in enumerate(mutations(data, n_random, seed)):
            d = work / f"{inp.kind}-{j}"
            d.mkdir(parents=True)
            for extra in inp.files:
                shutil.copy(inp.source.parent / extra, d / extra)
            f = d / inp.source.name
            f.write_bytes(mutated)
            before = tree(d)
            code, out, err = invoke([a.replace("{f}", str(f)).replace("{d}", str(d)) for a in inp.command])
            written = tree(d) != before
            verdict, detail = judge(code, out, err, written)
            outcomes.append(Outcome(inp.kind, name, verdict, detail))
            shutil.rmtree(d)
    return outcomes
