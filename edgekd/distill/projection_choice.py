"""``--projection auto``: inverted or traditional, chosen from the features before training (issue 24).

The paper's claims 1-2 as a decision: the traditional projection (``d(P(Z_s), Z_t)``) is as good or
better when the teacher is *similar* to the student's task, the inverted one (``d(Z_s, P(Z_t))``)
when it is dissimilar.  Before the first step, on the calibration batches, the student's features
``Z_s`` and the teacher's ``Z_t`` (resized to the student's grid, as the distiller does) are compared
by their **debiased linear CKA** (centred kernel alignment with the unbiased HSIC estimator of Song et
al. 2012, as in Nguyen et al. 2021): 1 for features that are a rotation and scaling of each other, about
0 for unrelated ones, whatever the channel counts and without the upward bias the plain estimator has
when rows are few against channels (a random ViT's 768 channels on a few hundred rows).

Rule: **traditional when CKA >= ``distill.auto_projection_cka`` (default 0.5), inverted otherwise.**
The held-out least-squares fit of each direction (fitted on the first half of the images, scored on the
second) is recorded beside it for the reader; the rule does not use it.
"""

from __future__ import annotations

import torch

MAX_ROWS = 4096  # rows kept for the measurement (evenly spaced): enough for a stable CKA, cheap on a CPU


def feature_rows(z: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B*H*W, C) in float64 on the CPU, image-major."""
    return z.detach().double().cpu().permute(0, 2, 3, 1).reshape(-1, z.shape[1])


def _hsic_terms(X: torch.Tensor):
    """Per-matrix pieces of the unbiased HSIC estimator with a linear kernel K = X X^T, never forming K."""
    d = (X * X).sum(1)  # diag(K)
    k1 = X @ X.sum(0) - d  # K~ 1, K~ = K with a zero diagonal
    return d, k1


def _hsic_unbiased(X, Y, tX, tY) -> torch.Tensor:
    n = X.shape[0]
    (dX, kX), (dY, kY) = tX, tY
    tr = (X.t() @ Y).pow(2).sum() - (dX * dY).sum()  # tr(K~ L~)
    return (tr + kX.sum() * kY.sum() / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * (kX * kY).sum()) / (n * (n - 3))


def debiased_linear_cka(X: torch.Tensor, Y: torch.Tensor) -> float:
    """Debiased linear CKA of two row-aligned feature matrices (n x p, n x q), n >= 4."""
    if X.shape[0] < 4:  # the unbiased estimator needs four rows
        return 0.0
    X = (X - X.mean(0)).double()
    Y = (Y - Y.mean(0)).double()
    tX, tY = _hsic_terms(X), _hsic_terms(Y)
    xy, xx, yy = _hsic_unbiased(X, Y, tX, tY), _hsic_unbiased(X, X, tX, tX), _hsic_unbiased(Y, Y, tY, tY)
    if xx <= 0 or yy <= 0:
        return 0.0
    return float(xy / (xx * yy).sqrt())


def heldout_r2(source: torch.Tensor, target: torch.Tensor) -> float:
    """R^2 on the second half of the rows of the least-squares (minimum-norm) map fitted on the first half."""
    half = source.shape[0] // 2
    mu_s, mu_t = source[:half].mean(0), target[:half].mean(0)
    P = torch.linalg.lstsq(source[:half] - mu_s, target[:half] - mu_t, driver="gelsd").solution
    pred = (source[half:] - mu_s) @ P + mu_t
    test = target[half:]
    return float(1.0 - (test - pred).pow(2).sum() / (test - test.mean(0)).pow(2).sum().clamp_min(1e-30))


def _subsample(X: torch.Tensor) -> torch.Tensor:
    if X.shape[0] <= MAX_ROWS:
        return X
    return X[torch.linspace(0, X.shape[0] - 1, MAX_ROWS).round().long()]


def choose_projection(zs: list, zt: list, threshold: float = 0.5) -> dict:
    """The choice and its measurement from lists of per-batch ``Z_s`` and ``Z_t`` (already on the same grid)."""
    X = _subsample(torch.cat([feature_rows(z) for z in zs]))
    Y = _subsample(torch.cat([feature_rows(z) for z in zt]))
    cka = debiased_linear_cka(X, Y)
    chosen = "traditional" if cka >= threshold else "inverted"
    return {"requested": "auto", "chosen": chosen, "cka": cka, "threshold": threshold, "rows": int(X.shape[0]),
            "heldout_r2_inverted": heldout_r2(Y, X), "heldout_r2_traditional": heldout_r2(X, Y),
            "rule": f"traditional when the debiased linear CKA of Z_s and Z_t before training is >= {threshold:g}, "
                    f"else inverted"}


def describe(choice: dict) -> str:
    """The one line a run prints about its choice."""
    side = ">=" if choice["chosen"] == "traditional" else "<"
    why = "a similar teacher" if choice["chosen"] == "traditional" else "a dissimilar teacher"
    return (f"--projection auto: {choice['chosen']} (debiased linear CKA of Z_s and Z_t {choice['cka']:.3f} {side} "
            f"{choice['threshold']:g} on {choice['rows']} rows before training: {why})")
