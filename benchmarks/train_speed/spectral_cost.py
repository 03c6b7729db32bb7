"""Cost and accuracy of the spectral regulariser: exact SVD vs the warm-started fast path.

Feature matrix of a MobileNetV2 student at batch 32, 256x320 (stride 32): 2560 x 320.
Prints ms per forward+backward for each and the fast path's relative error (value) after warm-up.

    python benchmarks/train_speed/spectral_cost.py [--device cuda] [--rows 2560 --channels 320 --r 2]
"""

import argparse
import json
import time

import torch

from edgekd.distill.spectral import SpectralRegulariser, spectral_loss, spectral_loss_exact


def timed(fn, z, n, sync):
    for _ in range(3):
        fn(z).backward()
    sync()
    t = time.perf_counter()
    for _ in range(n):
        z.grad = None
        fn(z).backward()
    sync()
    return (time.perf_counter() - t) / n * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rows", type=int, default=2560)
    ap.add_argument("--channels", type=int, default=320)
    ap.add_argument("--r", type=int, default=2)
    ap.add_argument("--iters", type=int, default=2)
    ap.add_argument("--n", type=int, default=50)
    a = ap.parse_args()
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    # Features with a power-law spectrum, like a trained encoder's.
    U, _ = torch.linalg.qr(torch.randn(a.rows, a.channels))
    V, _ = torch.linalg.qr(torch.randn(a.channels, a.channels))
    s = 10.0 / torch.arange(1, a.channels + 1).float()  # power-law decay
    z = ((U * s) @ V.t()).to(dev).requires_grad_(True)
    reg = SpectralRegulariser(a.r, a.iters).to(dev)
    out = {
        "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
        "shape": [a.rows, a.channels], "r": a.r, "iters": a.iters,
        "exact_svd_ms": timed(lambda t: spectral_loss_exact(t, a.r), z, a.n, sync),
        "eigh_subspace_ms": timed(lambda t: spectral_loss(t, a.r), z, a.n, sync),
        "fast_path_ms": timed(reg, z, a.n, sync),
    }
    # Accuracy while the features drift a little each step, as in training.
    errs, gerrs = [], []
    zz = z.detach().clone()
    for _ in range(20):
        zz = zz + 1e-3 * torch.randn_like(zz)
        x1 = zz.clone().requires_grad_(True)
        x2 = zz.clone().requires_grad_(True)
        a1, a2 = spectral_loss_exact(x1, a.r), reg(x2)
        a1.backward()
        a2.backward()
        errs.append(abs(a1.item() - a2.item()) / abs(a1.item()))
        gerrs.append(((x1.grad - x2.grad).norm() / x1.grad.norm()).item())
    out["fast_path_rel_error_value"] = max(errs[5:])
    out["fast_path_rel_error_grad"] = max(gerrs[5:])
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
