"""Trend prediction: when will a series cross a threshold, at the rate it is going?

Two fits over the recent history, both cheap enough to run every sample:

- ``linear`` (default): Theil-Sen, the median of the slopes between all pairs of points. One
  outlier (a GC pause, a burst) barely moves it, unlike least squares; the level is the median of
  the residual intercepts, evaluated at the last sample time.
- ``holt``: Holt's double exponential smoothing (level + trend), which follows a change of slope
  faster at the price of more noise. Samples are treated as evenly spaced at the median spacing.

``time_to_cross`` turns a fit into "seconds until the threshold" (None when the series moves away
from it or is flat); ``describe_crossing`` says it the way the dashboard and alerts do: "memory
will cross 90% in about 12 min".
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

from aether_perf.errors import InvalidArgument

__all__ = ["METHODS", "Trend", "describe_crossing", "fit_trend", "format_eta", "time_to_cross"]

METHODS = ("linear", "holt")


@dataclass(frozen=True)
class Trend:
    """A fitted trend: ``level`` at time ``at`` (epoch seconds), changing by ``slope`` per second."""

    level: float
    slope: float
    at: float
    points: int

    def value_at(self, when: float) -> float:
        return self.level + self.slope * (when - self.at)


def fit_trend(
    times: Sequence[float],
    values: Sequence[float],
    method: str = "linear",
    *,
    alpha: float = 0.5,
    beta: float = 0.3,
) -> Trend | None:
    """Fit a trend to the points; None with fewer than 3 points or no time span."""
    if method not in METHODS:
        raise InvalidArgument(f"trend method: unknown '{method}' (choose from {', '.join(METHODS)})")
    if len(times) != len(values):
        raise InvalidArgument("trend: times and values differ in length")
    n = len(times)
    if n < 3 or times[-1] <= times[0]:
        return None
    if method == "linear":
        return _theil_sen(times, values)
    return _holt(times, values, alpha, beta)


def _theil_sen(times: Sequence[float], values: Sequence[float]) -> Trend | None:
    n = len(times)
    slopes = [
        (values[j] - values[i]) / (times[j] - times[i])
        for i in range(n)
        for j in range(i + 1, n)
        if times[j] != times[i]
    ]
    if not slopes:
        return None
    slope = median(slopes)
    t_end = times[-1]
    level = median(v - slope * (t - t_end) for t, v in zip(times, values, strict=True))
    return Trend(level=level, slope=slope, at=t_end, points=n)


def _holt(times: Sequence[float], values: Sequence[float], alpha: float, beta: float) -> Trend | None:
    steps = [b - a for a, b in itertools.pairwise(times) if b > a]
    if not steps:
        return None
    dt = median(steps)
    level = values[0]
    trend = values[1] - values[0]
    for value in values[1:]:
        previous = level
        level = alpha * value + (1 - alpha) * (level + trend)
        trend = beta * (level - previous) + (1 - beta) * trend
    return Trend(level=level, slope=trend / dt, at=times[-1], points=len(values))


def time_to_cross(trend: Trend, threshold: float, *, above: bool = True) -> float | None:
    """Seconds after ``trend.at`` until the trend reaches ``threshold`` (0 if already past it);
    None if it is heading away or flat. ``above=False`` watches for a fall below the threshold."""
    gap = threshold - trend.level
    if (above and gap <= 0) or (not above and gap >= 0):
        return 0.0
    if trend.slope == 0 or (gap > 0) != (trend.slope > 0):
        return None
    eta = gap / trend.slope
    return eta if math.isfinite(eta) else None


def format_eta(seconds: float) -> str:
    """A rough human duration: "40 s", "12 min", "3.5 h"."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    hours = seconds / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} days"


def describe_crossing(label: str, threshold: float, unit: str, seconds: float) -> str:
    """ "memory will cross 90% in about 12 min"."""
    shown = f"{threshold:g}{unit}" if unit == "%" else f"{threshold:g}{' ' + unit if unit else ''}"
    return f"{label} will cross {shown} in about {format_eta(seconds)}"
