"""torchrun with two CPU processes (gloo) matches one process on the same global batch."""

import socket
import subprocess
import sys

import torch

from conftest import run_cli

# A student without BatchNorm (NF-RegNet) and a batch-decomposable objective (classification
# cross-entropy + FitNets MSE): the mean of two ranks' gradients is then exactly the gradient
# of the global batch, so the two runs must agree.  (With BatchNorm, DDP on GPUs uses SyncBatchNorm.)
ARGS = ["distill", "--task", "classification", "--student", "nf_regnet_b0", "--student-weights", "none", "--teacher", "random:resnet18",
        "--image-size", "64", "64", "--train-size", "8", "--val-size", "4", "--epochs", "1", "--max-steps", "2",
        "--workers", "0", "--device", "cpu", "--quiet", "--set", "train.augment=false", "--distill-weight", "1",
        "--set", "distill.cache_teacher=off"]  # per-image cached features differ from batched ones by rounding


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_step_matches_single_process(tmp_path):
    single = tmp_path / "single"
    run_cli([*ARGS, "--batch-size", "4", "--out", single])
    ddp = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(_free_port()), "-m", "edgekd", *ARGS, "--batch-size", "2", "--out", str(ddp)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={"OMP_NUM_THREADS": "1", **__import__("os").environ})
    assert p.returncode == 0, p.stderr[-3000:]
    a = torch.load(single / "last.pt", weights_only=True)
    b = torch.load(ddp / "last.pt", weights_only=True)
    assert a["step"] == b["step"] == 2
    for k in a["student"]:
        assert torch.allclose(a["student"][k], b["student"][k], atol=1e-5, rtol=1e-4), k
    for k in a["extra"]:  # the projector trained with the student, in sync
        assert torch.allclose(a["extra"][k], b["extra"][k], atol=1e-5, rtol=1e-4), k
    # only rank 0 wrote: one line per epoch, no stray files
    assert len((ddp / "metrics.jsonl").read_text().splitlines()) == 1
