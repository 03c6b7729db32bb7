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
    _same_gradients(a["optimizer"], b["optimizer"])
    lr_sum = _lr_sum(a)
    for part in ("student", "extra"):  # the projector trained with the student, in sync
        for k in a[part]:
            _same_weights(a[part][k], b[part][k], lr_sum, k)
    # only rank 0 wrote: one line per epoch, no stray files
    assert len((ddp / "metrics.jsonl").read_text().splitlines()) == 1


# Why the weights are not compared at 1e-5 everywhere (issue #26, finding 8).  gloo sums the two ranks'
# fp32 gradients and DDP divides by 2; one process takes the mean over 4 images.  The two sums are
# re-associated, so a gradient differs by a few fp32 ulps of its addends, which is ~1e-8 relative
# to the tensor's largest gradient (measured: at most 2.2e-6 of it in Adam's first moment).  AdamW
# then moves each weight by lr * m_hat / (sqrt(v_hat) + eps): for an element whose first-step gradient
# is near eps (1e-8) or cancels between the images, that ratio is ill-conditioned, and a rounding
# difference becomes a visible update difference (measured on torch 2.14.1: 8 of 380,160 weights by
# 2e-6..2.8e-5, every other weight within 1e-6).  What DDP promises is the gradient, so that is
# compared tightly; a weight may differ by at most what two ill-conditioned updates can: 2 * sum(lr_t)
# (|m_hat / sqrt(v_hat)| <= 1 for AdamW's two steps), and only in a tiny fraction of elements.


def _same_gradients(opt_a: dict, opt_b: dict) -> None:
    """Adam's first moment is linear in the gradients of the two steps: it must agree up to fp32 re-association."""
    assert opt_a["state"].keys() == opt_b["state"].keys()
    for i, sa in opt_a["state"].items():
        m_a, m_b = sa["exp_avg"], opt_b["state"][i]["exp_avg"]
        scale = float(m_a.abs().max())
        assert torch.allclose(m_a, m_b, atol=1e-5 * scale + 1e-12, rtol=1e-4), (i, float((m_a - m_b).abs().max()), scale)


def _lr_sum(ckpt: dict) -> float:
    """The sum of the learning rates of the steps taken (the LambdaLR schedule's factors on the base lr)."""
    from edgekd.config import effective_warmup
    from edgekd.train.build import lr_lambda

    sched, total = ckpt["scheduler"], ckpt["step"]  # the run's planned steps are the steps taken (--max-steps 2)
    f = lr_lambda(effective_warmup(ckpt["config"]["train"], total)[0], total)
    return max(sched["base_lrs"]) * sum(f(t) for t in range(ckpt["step"]))


def _same_weights(w_a, w_b, lr_sum: float, name: str) -> None:
    diff = (w_a - w_b).abs()
    assert float(diff.max()) <= 2 * lr_sum, (name, float(diff.max()), 2 * lr_sum)
    loose = int((diff > 1e-5 + 1e-4 * w_a.abs()).sum())
    assert loose <= max(1, diff.numel() // 1000), (name, loose, diff.numel())
