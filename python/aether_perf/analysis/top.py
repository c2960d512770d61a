"""Top functions: self and total time per function."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aether_perf.analysis.selection import select_samples, stack_totals
from aether_perf.errors import InvalidArgument
from aether_perf.model.frame import FunctionKey
from aether_perf.model.profile import Profile

__all__ = ["FunctionStat", "function_stats", "top_functions"]


@dataclass(frozen=True, slots=True)
class FunctionStat:
    """Time spent in one function over the selected samples.

    ``self_*`` counts the samples whose leaf frame runs the function, ``total_*`` those with the
    function anywhere on the stack (once per sample, however deep the recursion). The percentages
    are of the selection's total weight (0-100).
    """

    function: str
    file: str
    first_line: int
    self_ns: int
    total_ns: int
    self_samples: int
    total_samples: int
    self_pct: float
    total_pct: float

    @property
    def key(self) -> FunctionKey:
        """``(function, file, first_line)``."""
        return (self.function, self.file, self.first_line)


def function_stats(
    profile: Profile, *, thread: int | None = None, include_idle: bool = True
) -> list[FunctionStat]:
    """A FunctionStat for every function seen in the selected samples, in no particular order."""
    totals = stack_totals(profile, select_samples(profile, thread=thread, include_idle=include_idle))
    keys: list[FunctionKey] = []
    index: dict[FunctionKey, int] = {}
    function_of_frame: list[int] = []
    for frame in profile.frames:
        key = frame.function_key
        if key not in index:
            index[key] = len(keys)
            keys.append(key)
        function_of_frame.append(index[key])

    self_ns = [0] * len(keys)
    total_ns = [0] * len(keys)
    self_samples = [0] * len(keys)
    total_samples = [0] * len(keys)
    weights = totals.weight_ns.tolist()
    counts = totals.samples.tolist()
    for stack_id in totals.present():
        stack = profile.stacks[stack_id]
        if not stack:
            continue
        weight, count = weights[stack_id], counts[stack_id]
        leaf = function_of_frame[stack[-1]]
        self_ns[leaf] += weight
        self_samples[leaf] += count
        for function in {function_of_frame[i] for i in stack}:
            total_ns[function] += weight
            total_samples[function] += count

    whole = totals.total_ns

    def pct(ns: int) -> float:
        return 100.0 * ns / whole if whole else 0.0

    return [
        FunctionStat(
            function=key[0],
            file=key[1],
            first_line=key[2],
            self_ns=self_ns[i],
            total_ns=total_ns[i],
            self_samples=self_samples[i],
            total_samples=total_samples[i],
            self_pct=pct(self_ns[i]),
            total_pct=pct(total_ns[i]),
        )
        for i, key in enumerate(keys)
        if total_samples[i]
    ]


def top_functions(
    profile: Profile,
    n: int | None = 20,
    *,
    by: Literal["self", "total"] = "self",
    thread: int | None = None,
    include_idle: bool = True,
) -> list[FunctionStat]:
    """The ``n`` functions (all if None) with the most ``self`` or ``total`` time.

    Sorted by that time descending, then by function name, file and first line. ``thread``
    restricts to one thread (InvalidArgument if unknown); ``include_idle=False`` drops idle samples.
    """
    if by not in ("self", "total"):
        raise InvalidArgument(f"by must be 'self' or 'total', got {by!r}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
        raise InvalidArgument(f"n must be a non-negative integer or None, got {n!r}")
    stats = function_stats(profile, thread=thread, include_idle=include_idle)
    if by == "self":
        stats.sort(key=lambda s: (-s.self_ns, s.function, s.file, s.first_line))
    else:
        stats.sort(key=lambda s: (-s.total_ns, s.function, s.file, s.first_line))
    return stats if n is None else stats[:n]
