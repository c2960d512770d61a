"""Statistics of benchmark values and of two runs' comparison, in pure Python (small samples).

The unit of independent evidence is a *process*: values inside one process share its address
layout and hash seed and are autocorrelated, so tests and confidence intervals use one median per
process (as the research note recommends), while the descriptive figures (IQR, min, mean, stdev,
Tukey outliers) describe all values.

- :func:`bootstrap_ci` / :func:`bootstrap_ratio_ci`: percentile bootstrap of the median and of the
  ratio of two medians, seeded so a report is reproducible.
- :func:`mann_whitney_u`: two-sided; exact (the distribution of U is the coefficient list of a
  Gaussian binomial) when there are no ties and the samples are small, else the normal
  approximation with tie and continuity corrections.
- :func:`holm`: Holm's step-down adjustment across the benchmarks of a run.
- :func:`min_detectable_change`: the relative change a comparison of this size and noise would
  detect with 80% power, ``(z(1-a/2) + z(0.8)) * CV * sqrt(1/n + 1/m)``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist, fmean, stdev

__all__ = [
    "Summary",
    "bootstrap_ci",
    "bootstrap_ratio_ci",
    "holm",
    "mann_whitney_u",
    "median",
    "min_attainable_p",
    "min_detectable_change",
    "quantile",
    "summarize",
    "tukey_outliers",
]

_EXACT_LIMIT = 60  # n + m up to which the exact U distribution is used (no ties)


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    ordered = sorted(values)
    half = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[half]
    return (ordered[half - 1] + ordered[half]) / 2


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile with linear interpolation between order statistics (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("quantile of no values")
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def tukey_outliers(values: Sequence[float]) -> list[bool]:
    """Tukey's fences: True for a value below Q1 - 1.5 IQR or above Q3 + 1.5 IQR (kept, marked)."""
    if len(values) < 4:
        return [False] * len(values)
    q1, q3 = quantile(values, 0.25), quantile(values, 0.75)
    spread = q3 - q1
    low, high = q1 - 1.5 * spread, q3 + 1.5 * spread
    return [value < low or value > high for value in values]


def bootstrap_ci(
    values: Sequence[float], level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the median of ``values``."""
    if len(values) < 2:
        only = values[0]
        return only, only
    rng = random.Random(seed)
    size = len(values)
    pool = list(values)
    medians = sorted(median(rng.choices(pool, k=size)) for _ in range(resamples))
    return _percentiles(medians, level)


def bootstrap_ratio_ci(
    base: Sequence[float],
    head: Sequence[float],
    level: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``median(head) / median(base)`` (samples resampled
    independently)."""
    rng = random.Random(seed)
    base_pool, head_pool = list(base), list(head)
    ratios = sorted(
        median(rng.choices(head_pool, k=len(head_pool))) / median(rng.choices(base_pool, k=len(base_pool)))
        for _ in range(resamples)
    )
    return _percentiles(ratios, level)


def _percentiles(ordered: list[float], level: float) -> tuple[float, float]:
    tail = (1 - level) / 2
    return quantile(ordered, tail), quantile(ordered, 1 - tail)


def _u_distribution(n: int, m: int) -> list[int]:
    """Counts of the arrangements giving U = 0..n*m: the Gaussian binomial [n+m choose n]_q,
    as prod_{i=1..n} (1 - q^(m+i)) / (1 - q^i)."""
    size = n * m + 1
    poly = [0] * size
    poly[0] = 1
    for i in range(1, n + 1):
        shift = m + i
        for k in range(size - 1, shift - 1, -1):  # multiply by (1 - q^(m+i))
            poly[k] -= poly[k - shift]
        for k in range(i, size):  # divide by (1 - q^i): a running sum with stride i
            poly[k] += poly[k - i]
    return poly


def mann_whitney_u(base: Sequence[float], head: Sequence[float]) -> tuple[float, float]:
    """Two-sided Mann-Whitney U test; returns (U of ``head``, p-value)."""
    n, m = len(head), len(base)
    if n == 0 or m == 0:
        raise ValueError("Mann-Whitney U needs values on both sides")
    pooled = sorted([(value, 1) for value in head] + [(value, 0) for value in base])
    ranks = [0.0] * len(pooled)
    tie_term = 0.0
    start = 0
    while start < len(pooled):
        end = start
        while end + 1 < len(pooled) and pooled[end + 1][0] == pooled[start][0]:
            end += 1
        rank = (start + end) / 2 + 1
        for k in range(start, end + 1):
            ranks[k] = rank
        ties = end - start + 1
        tie_term += ties**3 - ties
        start = end + 1
    rank_sum = sum(rank for rank, (_, side) in zip(ranks, pooled, strict=True) if side == 1)
    u = rank_sum - n * (n + 1) / 2
    if tie_term == 0 and n + m <= _EXACT_LIMIT:
        counts = _u_distribution(n, m)
        total = sum(counts)
        k = round(u)
        lower = sum(counts[: k + 1]) / total
        upper = sum(counts[k:]) / total
        return u, min(1.0, 2 * min(lower, upper))
    mean_u = n * m / 2
    variance = n * m / 12 * ((n + m + 1) - tie_term / ((n + m) * (n + m - 1)))
    if variance <= 0:
        return u, 1.0
    z = (abs(u - mean_u) - 0.5) / math.sqrt(variance)
    return u, min(1.0, 2 * (1 - NormalDist().cdf(max(z, 0.0))))


def min_attainable_p(n: int, m: int) -> float:
    """The smallest two-sided p the exact U test can give with n and m values (asv's p_min)."""
    return min(1.0, 2 / math.comb(n + m, n))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (family-wise error rate), in the input order."""
    count = len(pvalues)
    order = sorted(range(count), key=lambda index: pvalues[index])
    adjusted = [0.0] * count
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (count - rank) * pvalues[index]))
        adjusted[index] = running
    return adjusted


def coefficient_of_variation(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = fmean(values)
    return stdev(values) / mean if mean else 0.0


def min_detectable_change(
    base: Sequence[float], head: Sequence[float], alpha: float = 0.05, power: float = 0.8
) -> float:
    """The relative change (0.05 = 5%) detectable with ``power`` at level ``alpha`` given the
    process medians' noise (the mean of both sides' coefficients of variation)."""
    if len(base) < 2 or len(head) < 2:
        return math.inf
    cv = (coefficient_of_variation(base) + coefficient_of_variation(head)) / 2
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    return z * cv * math.sqrt(1 / len(base) + 1 / len(head))


@dataclass(frozen=True)
class Summary:
    """Descriptive statistics of one benchmark in one run (seconds per loop)."""

    values: int
    processes: int
    median: float  #: median of the per-process medians
    ci_low: float  #: bootstrap 95% interval of that median
    ci_high: float
    min: float
    max: float
    mean: float
    stdev: float
    q1: float
    q3: float
    iqr: float
    outliers: int  #: values outside Tukey's fences (kept, marked)
    cv: float  #: coefficient of variation of the per-process medians


def summarize(
    process_values: Sequence[Sequence[float]], medians: Sequence[float] | None = None, seed: int = 0
) -> Summary:
    """Statistics over ``process_values`` (one list of values per worker process); ``medians``
    are the per-process estimates (default: each process's median)."""
    flat = [value for values in process_values for value in values]
    if medians is None:
        medians = [median(values) for values in process_values if values]
    low, high = bootstrap_ci(medians, seed=seed)
    q1, q3 = quantile(flat, 0.25), quantile(flat, 0.75)
    return Summary(
        values=len(flat),
        processes=len(medians),
        median=median(medians),
        ci_low=low,
        ci_high=high,
        min=min(flat),
        max=max(flat),
        mean=fmean(flat),
        stdev=stdev(flat) if len(flat) > 1 else 0.0,
        q1=q1,
        q3=q3,
        iqr=q3 - q1,
        outliers=sum(tukey_outliers(flat)),
        cv=coefficient_of_variation(medians),
    )
