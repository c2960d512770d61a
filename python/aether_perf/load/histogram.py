"""Latency histograms of the load tester: the instrumentation's log-linear histogram, serialised.

A load test records every transaction's latency (nanoseconds) into
:class:`aether_perf.instrumentation.histogram.Histogram`: HDR-style log-linear buckets (128 per
octave, so a reported percentile is within 0.8 % of the true value), kept sparse. Merging adds bucket
counts, so the histogram merged from several workers is *exactly* the one that recording all their
values in one place would have given: percentiles of the merge are the percentiles of the union.

This module adds what the load tester needs on top: a JSON-able form (to cross process boundaries
and to save results), a merge of many, and the summary percentiles of a report.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from aether_perf.errors import InvalidArgument
from aether_perf.instrumentation.histogram import Histogram

__all__ = ["PERCENTILES", "Histogram", "decode", "encode", "merged", "summary"]

#: The percentiles every report shows (besides max).
PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)


def encode(histogram: Histogram) -> dict[str, Any]:
    """A JSON-able dict of ``histogram`` (values in ns; buckets as sorted [index, count] pairs)."""
    return {
        "unit": "ns",
        "count": histogram.count,
        "sum": histogram.total,
        "min": histogram.min,
        "max": histogram.max,
        "buckets": [[index, histogram.counts[index]] for index in sorted(histogram.counts)],
    }


def decode(data: Mapping[str, Any]) -> Histogram:
    """The histogram :func:`encode` gave ``data`` for; InvalidArgument if it is not one."""
    try:
        if data.get("unit") != "ns":
            raise ValueError("unit is not ns")
        counts = {int(index): int(n) for index, n in data["buckets"]}
        histogram = Histogram.from_parts(
            count=int(data["count"]),
            total=int(data["sum"]),
            minimum=int(data["min"]),
            maximum=int(data["max"]),
            counts=counts,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidArgument(f"not a latency histogram: {exc}") from None
    if sum(histogram.counts.values()) != histogram.count:
        raise InvalidArgument("not a latency histogram: bucket counts do not add up to its count")
    return histogram


def merged(histograms: Iterable[Histogram]) -> Histogram:
    """A new histogram holding the values of all ``histograms`` (exact: bucket counts add)."""
    total = Histogram()
    for histogram in histograms:
        total.merge(histogram)
    return total


def summary(histogram: Histogram) -> dict[str, float]:
    """Seconds: mean, p50, p90, p95, p99, p99.9 and max (``nan`` when empty)."""
    values = histogram.percentiles(PERCENTILES) if histogram.count else [math.nan] * len(PERCENTILES)
    out = {"mean": histogram.mean / 1e9 if histogram.count else math.nan}
    for q, value in zip(PERCENTILES, values, strict=True):
        out[percentile_key(q)] = value / 1e9
    out["max"] = histogram.max / 1e9 if histogram.count else math.nan
    return out


def percentile_key(q: float) -> str:
    """ "p95" for 95, "p99.9" for 99.9."""
    return f"p{q:g}"
