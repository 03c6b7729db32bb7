"""Paired statistics over seeds: does a cell differ from its reference, and how many seeds would tell?

Torch-free and scipy-free (the bench machine and a core install have neither): the Student t
quantile is computed here from the regularised incomplete beta function (continued fraction,
Numerical Recipes 6.4) and inverted by bisection; tests check it against ``scipy.stats.t``.

Two cells are compared on the seeds **both** have (a seed fixes the student's initialisation and
the data order, so seed ``s`` of one cell is the natural partner of seed ``s`` of another); seeds
only one cell has are left out and counted.  With paired differences ``d_i = cell_i - ref_i``
over ``n`` seeds, mean ``d̄`` and sample standard deviation ``s_d`` (n-1 in the denominator):

* 95% confidence interval: ``d̄ ± t_{0.975, n-1} · s_d / sqrt(n)``;
* paired t statistic: ``t = d̄ / (s_d / sqrt(n))``;
* minimum detectable difference (MDD) at ``n`` seeds, for a two-sided test at α = 0.05 with
  power 0.8: ``MDD(n) = (t_{1-α/2, n-1} + t_{power, n-1}) · s_d / sqrt(n)``.  A true difference
  as large as the MDD is detected 80% of the time; a smaller one is missed more often than that,
  so "not resolved" means "not detected", not "no effect";
* "needs ≈ N seeds": the smallest ``N`` (2 ≤ N ≤ 200) with ``MDD(N) < |d̄|`` at the observed
  ``s_d``; "> 200" beyond the cap; "—" when ``d̄ = 0`` (no difference to detect).

Verdict: "better" / "worse" when the interval excludes 0 (the direction read with the metric's
better-direction), else "not resolved (needs ≈ N seeds)"; with one pair there is no interval:
"not resolved (1 seed)".  Without variance between seeds (every paired difference the same: sd 0,
which a quantised metric such as δ1 on a small validation set produces when 13 of 32768 pixels
flip on every seed alike) there is no interval either, only a width of zero that says nothing
about the spread: "not resolved: no variance between seeds", no t, no interval, no MDD.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache

ALPHA = 0.05
POWER = 0.8
NEEDS_CAP = 200
NO_VARIANCE = "not resolved: no variance between seeds"


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz), NR 6.4."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):  # the fraction converges fast on this side; use the symmetry on the other
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, dof: float) -> float:
    """P(T <= t) for Student's t with ``dof`` degrees of freedom."""
    tail = 0.5 * betainc(dof / 2.0, 0.5, dof / (dof + t * t))
    return 1.0 - tail if t > 0 else tail


@lru_cache(maxsize=4096)  # the MDD search asks for the same few quantiles over and over
def t_quantile(p: float, dof: float) -> float:
    """The ``p`` quantile of Student's t (e.g. 0.975 with 2 dof -> 4.303), by bisection on :func:`t_cdf`."""
    if not 0.0 < p < 1.0 or dof <= 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and dof > 0, got p={p}, dof={dof}")
    if p < 0.5:
        return -t_quantile(1.0 - p, dof)
    if p == 0.5:
        return 0.0
    lo, hi = 0.0, 1.0
    while t_cdf(hi, dof) < p:
        lo, hi = hi, hi * 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if t_cdf(mid, dof) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    return 0.5 * (lo + hi)


def mdd(sd: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """Minimum detectable difference at ``n`` paired seeds: (t_{1-α/2,n-1} + t_{power,n-1}) · sd / sqrt(n)."""
    if n < 2:
        return math.nan
    return (t_quantile(1.0 - alpha / 2.0, n - 1) + t_quantile(power, n - 1)) * sd / math.sqrt(n)


def needs_seeds(sd: float, diff: float, cap: int = NEEDS_CAP) -> int | None:
    """Smallest n in 2..cap with MDD(n) < |diff|; cap + 1 when even ``cap`` seeds are not enough; None when diff is 0."""
    if diff == 0 or not math.isfinite(diff) or not math.isfinite(sd):
        return None
    for n in range(2, cap + 1):
        if mdd(sd, n) < abs(diff):
            return n
    return cap + 1


def needs_text(n: int | None, cap: int = NEEDS_CAP) -> str:
    return "—" if n is None else (f"> {cap}" if n > cap else f"≈ {n}")


@dataclass
class Paired:
    """A paired comparison of a cell against its reference on the seeds both have."""

    n: int  # pairs used
    seeds: list  # the paired seeds
    unpaired: int  # seeds present in only one of the two
    mean: float  # mean of cell - reference (metric units)
    ref_mean: float  # reference mean over the paired seeds
    sd: float  # sample std of the differences (nan with one pair)
    t: float  # paired t statistic (nan below two pairs or when everything is 0)
    ci_low: float
    ci_high: float
    mdd: float  # minimum detectable difference at n
    needs: int | None  # seeds that would detect |mean| (cap + 1: more than the cap; None: mean is 0)
    verdict: str

    @property
    def rel(self) -> float:
        """The mean difference as a fraction of the reference (nan when the reference is 0)."""
        return self.mean / self.ref_mean if self.ref_mean else math.nan

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rel"] = self.rel
        d["needs_text"] = needs_text(self.needs)
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def paired(cell: dict, ref: dict, higher_is_better: bool = True) -> Paired:
    """Compare ``cell`` with ``ref``, each {seed: metric value}, on the seeds both have (finite values only)."""
    seeds = sorted(s for s in cell if s in ref and _finite(cell[s]) and _finite(ref[s]))
    unpaired = len(set(cell) ^ set(ref)) + sum(1 for s in set(cell) & set(ref) if s not in seeds)
    n = len(seeds)
    nan = math.nan
    if n == 0:
        return Paired(0, [], unpaired, nan, nan, nan, nan, nan, nan, nan, None, "not resolved (no paired seeds)")
    diffs = [float(cell[s]) - float(ref[s]) for s in seeds]
    mean = math.fsum(diffs) / n
    ref_mean = math.fsum(float(ref[s]) for s in seeds) / n
    if n == 1:
        return Paired(1, seeds, unpaired, mean, ref_mean, nan, nan, nan, nan, nan, None, "not resolved (1 seed)")
    sd = math.sqrt(math.fsum((d - mean) ** 2 for d in diffs) / (n - 1))
    scale = max(abs(float(v)) for s in seeds for v in (cell[s], ref[s]))
    if len(set(diffs)) < 2 or sd <= 1e-9 * scale:  # float rounding of equal differences is no spread either
        # Identical differences (a quantised metric) give sd 0: a zero-width interval is not evidence.
        verdict = "not resolved (no difference)" if mean == 0 else NO_VARIANCE
        return Paired(n, seeds, unpaired, mean, ref_mean, 0.0, nan, nan, nan, nan, None, verdict)
    se = sd / math.sqrt(n)
    half = t_quantile(1.0 - ALPHA / 2.0, n - 1) * se
    t = mean / se if se > 0 else (math.copysign(math.inf, mean) if mean else nan)
    lo, hi = mean - half, mean + half
    need = needs_seeds(sd, mean)
    if lo > 0 or hi < 0:
        verdict = "better" if (mean > 0) == higher_is_better else "worse"
    elif mean == 0:
        verdict = "not resolved (no difference)"
    else:
        verdict = f"not resolved (needs {needs_text(need)} seeds)"
    return Paired(n, seeds, unpaired, mean, ref_mean, sd, t, lo, hi, mdd(sd, n), need, verdict)
