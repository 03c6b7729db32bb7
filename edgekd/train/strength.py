"""Loss strength that means the same for every method: gradients on ``Z_s`` (issue 10, docs/method.md §5).

A weight means nothing across distances (mdistiller weights FitNets 100, AT 1000, PKT 30000) nor
across feature scales (a pretrained MobileNetV2 bottleneck has rms 0.23, a random one 1.0).  What
acts on the student is the gradient each term sends into its features ``Z_s``; so edgekd measures
``||dL_aux/dZ_s|| / ||dL_task/dZ_s||`` and, for ``auto`` weights, sets ``w`` so that ratio equals
``distill.grad_ratio``.
"""

from __future__ import annotations

import torch

AUX_TERMS = ("distill", "spectral")


def term_gradient_norms(model, x, y, zt) -> dict:
    """``||dL_term / dZ_s||`` of each unweighted term on one batch (no parameter gradients touched)."""
    zs, losses = model.terms(x, y, zt)
    norms = {}
    for name, loss in losses.items():
        (g,) = torch.autograd.grad(loss.float(), zs, retain_graph=True, allow_unused=True)
        norms[name] = 0.0 if g is None else float(g.float().norm())
    return norms


def mean_norms(batches, model, all_reduce=None) -> dict:
    """Term gradient norms averaged over ``batches`` of (x, y, zt) (and over processes with ``all_reduce``)."""
    sums: dict = {}
    for x, y, zt in batches:
        for k, v in term_gradient_norms(model, x, y, zt).items():
            sums[k] = sums.get(k, 0.0) + v
    names = sorted(sums)
    vec = torch.tensor([sums[k] / max(1, len(batches)) for k in names], dtype=torch.float64)
    if all_reduce is not None:
        vec = all_reduce(vec)
    return dict(zip(names, vec.tolist()))


def ratios(norms: dict, weights: dict) -> dict:
    """Weighted auxiliary gradient over the task's, per auxiliary term present."""
    task = norms.get("task", 0.0) or float("nan")
    return {k: weights[k] * norms[k] / task for k in AUX_TERMS if k in norms}


def auto_weight(norms: dict, term: str, target: float) -> float:
    """The weight that makes ``term``'s gradient ``target`` times the task's (0 when the term has none)."""
    g = norms.get(term, 0.0)
    return 0.0 if g <= 0 else target * norms["task"] / g
