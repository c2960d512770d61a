"""A streaming log-linear histogram of durations in nanoseconds (HDR-histogram style).

Values below 256 ns get a bucket each (exact). Above, every power-of-two range ("octave")
``[2**k, 2**(k+1))`` is cut into 128 equal buckets, so a bucket is at most 1/128 of its lower bound
wide: reporting a value from inside its bucket is off by at most 0.8 % (0.4 % from the middle).
The bucket of a value ``v`` comes from two integer operations::

    shift = v.bit_length() - 8
    index = v if shift <= 0 else (shift << 7) + (v >> shift)

The counts are kept sparse (bucket index -> count), so memory is bounded by the buckets ever hit:
at most 128 per octave, about 4,600 buckets from 1 ns to one hour (2**42 ns) and never more than
8,000 for any 63-bit value, whatever the number of values recorded.

Percentiles follow numpy's default ("linear") method: the value at the 0-based rank
``q / 100 * (count - 1)``, interpolated between the order statistics either side of it. An order
statistic is estimated inside its bucket (its values taken as spread evenly over the bucket), except
the first and the last, which are the exact minimum and maximum the histogram keeps beside the
buckets.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from aether_perf.errors import InvalidArgument

__all__ = ["SUB_BUCKET_BITS", "Histogram", "bucket_bounds", "bucket_index"]

#: log2 of the number of buckets per octave above the exact range.
SUB_BUCKET_BITS = 7
_EXACT_BITS = SUB_BUCKET_BITS + 1  # values below 2**8 = 256 get one bucket each
_EXACT_LIMIT = 1 << _EXACT_BITS


def bucket_index(value: int) -> int:
    """The bucket of ``value`` (a non-negative number of nanoseconds)."""
    shift = value.bit_length() - _EXACT_BITS
    if shift <= 0:
        return value
    return (shift << SUB_BUCKET_BITS) + (value >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """The values ``[low, high)`` that fall into bucket ``index``."""
    if index < _EXACT_LIMIT:
        return index, index + 1
    shift = (index >> SUB_BUCKET_BITS) - 1
    mantissa = index - (shift << SUB_BUCKET_BITS)
    return mantissa << shift, (mantissa + 1) << shift


class Histogram:
    """Counts of durations (ns) in log-linear buckets, with the exact count, sum, minimum and maximum.

    ``record`` adds one value; ``merge`` adds another histogram's values; ``percentile`` reads one.
    The instrumentation hot path updates the same fields inline (see
    :mod:`aether_perf.instrumentation.timing`), with the same bucket arithmetic.
    """

    __slots__ = ("count", "counts", "max", "min", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0
        self.min = 0
        self.max = 0
        self.counts: dict[int, int] = {}

    @classmethod
    def from_values(cls, values: Iterable[int]) -> Histogram:
        """A histogram of ``values`` (non-negative integers, nanoseconds)."""
        histogram = cls()
        for value in values:
            histogram.record(value)
        return histogram

    @classmethod
    def from_parts(
        cls, *, count: int, total: int, minimum: int, maximum: int, counts: Mapping[int, int]
    ) -> Histogram:
        """A histogram made of its parts (as accumulated elsewhere); ``counts`` is copied."""
        histogram = cls()
        histogram.count = count
        histogram.total = total
        histogram.min = minimum if count else 0
        histogram.max = maximum if count else 0
        histogram.counts = {index: n for index, n in counts.items() if n}
        return histogram

    def record(self, value: int) -> None:
        """Add one value (nanoseconds, >= 0)."""
        if value < 0:
            raise InvalidArgument(f"a duration must not be negative, got {value} ns")
        if self.count == 0 or value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        self.count += 1
        self.total += value
        index = bucket_index(value)
        self.counts[index] = self.counts.get(index, 0) + 1

    def merge(self, other: Histogram) -> None:
        """Add the values of ``other`` to this histogram."""
        if other.count == 0:
            return
        if self.count == 0 or other.min < self.min:
            self.min = other.min
        if other.max > self.max:
            self.max = other.max
        self.count += other.count
        self.total += other.total
        for index, n in other.counts.items():
            self.counts[index] = self.counts.get(index, 0) + n

    @property
    def mean(self) -> float:
        """The mean value (ns), ``nan`` when empty."""
        return self.total / self.count if self.count else math.nan

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0..100) in ns, ``nan`` when empty (see the module doc)."""
        if isinstance(q, bool) or not isinstance(q, (int, float)) or not 0 <= q <= 100:
            raise InvalidArgument(f"a percentile must be a number from 0 to 100, got {q!r}")
        return self.percentiles([q])[0]

    def percentiles(self, qs: Iterable[float]) -> list[float]:
        """The percentiles ``qs`` (each 0..100) in ns, in one pass over the buckets."""
        wanted = [float(q) for q in qs]
        n = sum(self.counts.values())
        if n == 0:
            return [math.nan] * len(wanted)
        # numpy's "linear" method: the value at 0-based rank q/100*(n-1), interpolated between the
        # order statistics either side of it; order statistic k is estimated inside its bucket.
        ranks = {}
        for q in wanted:
            rank = q / 100.0 * (n - 1)
            below = math.floor(rank)
            ranks[below] = ranks[min(below + 1, n - 1)] = 0.0
        order = sorted(ranks)
        seen, at = 0, 0
        for index in sorted(self.counts):
            count = self.counts[index]
            low, high = bucket_bounds(index)
            while at < len(order) and order[at] < seen + count:
                k = order[at]
                if k == 0:
                    value = float(self.min)
                elif k == n - 1:
                    value = float(self.max)
                elif high - low == 1:
                    value = float(low)
                else:
                    # The bucket's values taken as spread evenly over [low, high).
                    value = low + (k - seen + 0.5) / count * (high - low)
                ranks[k] = min(max(value, float(self.min)), float(self.max))
                at += 1
            seen += count
        results = []
        for q in wanted:
            rank = q / 100.0 * (n - 1)
            below = math.floor(rank)
            above = min(below + 1, n - 1)
            fraction = rank - below
            results.append(ranks[below] + fraction * (ranks[above] - ranks[below]))
        return results

    def __repr__(self) -> str:
        return f"<Histogram count={self.count} buckets={len(self.counts)}>"
