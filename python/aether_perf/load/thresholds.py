"""Pass/fail criteria in k6's spirit: ``"p95<200ms"``, ``"errors<1%"``, ``"rps>=100"``.

Grammar (spaces allowed between parts)::

    threshold := metric [ "[" transaction "]" ] op value
    metric    := p<N> | p(<N>) | raw_p<N> | avg | mean | max | min | errors | rps | late | dropped
    op        := < | <= | > | >=
    value     := <number>[ns|us|ms|s|m]   latency (a bare number means milliseconds, as in k6)
               | <number>% | <number>       errors (a fraction, or a percentage with %)
               | <number>                   rps (completed transactions per second), late, dropped (counts)

Latency metrics read the corrected histogram (the raw one with ``raw_``); a threshold applies to the
whole run, or to one transaction with ``p95[checkout]<300ms``. A syntax error names the 1-based
position where reading failed.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aether_perf.errors import InvalidArgument
from aether_perf.load.result import LoadTestResult, TransactionStats

__all__ = ["Threshold", "ThresholdOutcome", "check_thresholds", "parse_threshold"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_LATENCY_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "": 1e-3}
_METRIC = re.compile(
    r"raw_p\(?[0-9.]+\)?|p\([0-9.]+\)|p[0-9.]+|avg|mean|max|min|errors|error_rate|rps|late|dropped"
)
_NUMBER = re.compile(r"[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?")


@dataclass(frozen=True)
class Threshold:
    """One parsed threshold: ``metric`` (normalised: "p95", "raw_p99.9", "avg", "errors", ...)."""

    text: str
    metric: str
    op: str
    value: float  # seconds for latencies, a fraction for errors, per second for rps, a count else
    transaction: str | None = None

    @property
    def is_latency(self) -> bool:
        return self.metric.startswith(("p", "raw_p")) or self.metric in ("avg", "max", "min")


@dataclass(frozen=True)
class ThresholdOutcome:
    threshold: Threshold
    actual: float
    passed: bool

    def describe(self) -> str:
        t = self.threshold
        shown = _show(t, self.actual)
        return f"{'ok' if self.passed else 'FAILED'}  {t.text}  (actual {shown})"


def _show(t: Threshold, value: float) -> str:
    if math.isnan(value):
        return "no data"
    if t.is_latency:
        return f"{value * 1e3:.3g}ms"
    if t.metric == "errors":
        return f"{value * 100:.3g}%"
    return f"{value:.4g}"


def _fail(text: str, pos: int, what: str) -> InvalidArgument:
    return InvalidArgument(f"bad threshold {text!r} at position {pos + 1}: {what}")


def parse_threshold(text: str) -> Threshold:
    """Parse one threshold (see the module doc); InvalidArgument with the position on a syntax error."""
    if not isinstance(text, str):
        raise InvalidArgument(f"a threshold must be a string such as 'p95<200ms', got {text!r}")
    i = 0

    def skip() -> None:
        nonlocal i
        while i < len(text) and text[i].isspace():
            i += 1

    skip()
    m = _METRIC.match(text, i)
    if not m:
        raise _fail(
            text, i, "expected a metric (p95, p(99.9), raw_p99, avg, max, errors, rps, late, dropped)"
        )
    metric = m.group(0).replace("(", "").replace(")", "")
    if metric == "mean":
        metric = "avg"
    if metric == "error_rate":
        metric = "errors"
    if metric.startswith(("p", "raw_p")) and metric not in ("p",):
        q_text = metric.removeprefix("raw_").removeprefix("p")
        try:
            q = float(q_text)
        except ValueError:
            raise _fail(text, i + 1, f"{q_text!r} is not a percentile") from None
        if not 0 <= q <= 100:
            raise _fail(text, i + 1, f"percentile {q_text} is not between 0 and 100")
        metric = ("raw_" if metric.startswith("raw_") else "") + f"p{q:g}"
    i = m.end()
    skip()
    txn = None
    if i < len(text) and text[i] == "[":
        close = text.find("]", i)
        if close < 0:
            raise _fail(text, i, "'[' without a closing ']'")
        txn = text[i + 1 : close].strip()
        if not txn:
            raise _fail(text, i + 1, "expected a transaction name inside [ ]")
        i = close + 1
        skip()
    op = next((o for o in _OPS if text.startswith(o, i)), None)
    if op is None:
        raise _fail(text, i, "expected a comparison: <, <=, > or >=")
    i += len(op)
    skip()
    n = _NUMBER.match(text, i)
    if not n:
        raise _fail(text, i, "expected a number")
    number = float(n.group(0))
    i = n.end()
    skip()
    unit = text[i:].strip()
    threshold = Threshold(text.strip(), metric, op, number, txn)
    if threshold.is_latency:
        if unit not in _LATENCY_UNITS:
            raise _fail(text, i, f"expected a duration unit (ns, us, ms, s, m), got {unit!r}")
        value = number * _LATENCY_UNITS[unit]
    elif metric == "errors":
        if unit not in ("", "%"):
            raise _fail(text, i, f"expected a fraction such as 0.01 or a percentage such as 1%, got {unit!r}")
        value = number / 100 if unit == "%" else number
        if value > 1:
            raise _fail(text, n.start(), "an error rate above 100% can never be reached")
    else:
        if unit not in ("", "/s") or (unit == "/s" and metric != "rps"):
            raise _fail(text, i, f"expected a plain number, got {unit!r}")
        value = number
    return Threshold(threshold.text, metric, op, value, txn)


def _measure(t: Threshold, result: LoadTestResult) -> float:
    if t.transaction is not None:
        stats = result.transactions.get(t.transaction)
        if stats is None:
            raise InvalidArgument(
                f"threshold {t.text!r} names transaction {t.transaction!r}, which this scenario does not have"
                f" (it has: {', '.join(sorted(result.transactions)) or 'none'})"
            )
    else:
        stats = result.total
    return _value(t, stats, result)


def _value(t: Threshold, stats: TransactionStats, result: LoadTestResult) -> float:
    metric = t.metric
    if metric == "errors":
        return stats.error_rate
    if metric == "rps":
        return stats.count / result.duration if result.duration > 0 else math.nan
    if metric == "late":
        return float(result.late)
    if metric == "dropped":
        return float(result.dropped)
    hist = stats.raw if metric.startswith("raw_") else stats.corrected
    if hist.count == 0:
        return math.nan
    if metric == "avg":
        return hist.mean / 1e9
    if metric == "max":
        return hist.max / 1e9
    if metric == "min":
        return hist.min / 1e9
    return hist.percentile(float(metric.removeprefix("raw_").removeprefix("p"))) / 1e9


def check_thresholds(thresholds: Iterable[Threshold | str], result: LoadTestResult) -> list[ThresholdOutcome]:
    """Evaluate each threshold on ``result``; a latency with no data (nothing succeeded) fails."""
    out = []
    for item in thresholds:
        t = parse_threshold(item) if isinstance(item, str) else item
        actual = _measure(t, result)
        passed = not math.isnan(actual) and _OPS[t.op](actual, t.value)
        out.append(ThresholdOutcome(t, actual, passed))
    return out
