"""Super-linear loops: lines whose time grows faster than the program's input.

Run the program at two (or more) input sizes ``n``; for each program line, the slope of
``log(time)`` against ``log(n)`` estimates the exponent ``k`` in ``time ~ n**k`` (least squares
over the runs; with two runs it is ``log(t2/t1) / log(n2/n1)``). A linear loop has ``k ~ 1``, a
nested loop over the same input ``k ~ 2``. Time is the line's self time in seconds (not its share:
a share divides by the whole run, which grows too), summed per function's lines for the verdict,
and a function is reported at its hottest line when its slope reaches ``slope`` (default 1.5,
half-way between linear and quadratic) and it took at least ``min_share`` percent of the largest
run. A line missing from a run (no samples) is left out rather than read as zero time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from aether_perf.analysis.lines import line_stats
from aether_perf.analysis.program import is_program_file
from aether_perf.errors import InvalidArgument
from aether_perf.model.finding import Finding, Location
from aether_perf.model.frame import FunctionKey
from aether_perf.model.profile import Profile

__all__ = ["DEFAULT_MIN_SHARE", "DEFAULT_SLOPE", "RULE", "Scaling", "loglog_slope", "superlinear_findings"]

RULE = "complexity.superlinear"
DEFAULT_SLOPE = 1.5
#: Percent of the largest run's time a function must take to be judged.
DEFAULT_MIN_SHARE = 5.0
#: Samples a function needs in every run for its slope to mean something.
MIN_SAMPLES = 10


@dataclass(frozen=True)
class Scaling:
    """How one function's time grew with ``n``: its lines, times per run, and the fitted slope."""

    file: str
    function: str
    line: int
    lines: tuple[int, ...]
    sizes: tuple[float, ...]
    seconds: tuple[float, ...]
    slope: float
    share: float


def loglog_slope(sizes: Sequence[float], values: Sequence[float]) -> float:
    """The least-squares slope of ``log(values)`` against ``log(sizes)`` (all positive)."""
    xs = [math.log(s) for s in sizes]
    ys = [math.log(v) for v in values]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def _check_runs(runs: Sequence[tuple[float, Profile]]) -> list[tuple[float, Profile]]:
    result = sorted(runs, key=lambda run: run[0])
    if len(result) < 2:
        raise InvalidArgument("super-linear detection needs runs at two or more input sizes")
    for n, profile in result:
        if isinstance(n, bool) or not isinstance(n, (int, float)) or not n > 0 or not math.isfinite(n):
            raise InvalidArgument(f"input sizes must be positive numbers, got {n!r}")
        if not isinstance(profile, Profile):
            raise InvalidArgument(f"each run needs a Profile, got {type(profile).__name__}")
    if len({n for n, _ in result}) != len(result):
        raise InvalidArgument("the runs' input sizes must differ")
    return result


def scaling(runs: Sequence[tuple[float, Profile]]) -> list[Scaling]:
    """Per program function with samples in every run: its time per run and fitted slope, by
    slope descending."""
    ordered = _check_runs(runs)
    per_run: list[dict[FunctionKey, tuple[int, int, dict[int, int]]]] = []
    for _, profile in ordered:
        functions: dict[FunctionKey, tuple[int, int, dict[int, int]]] = {}
        for stat in line_stats(profile).values():
            if stat.self_ns <= 0 or not is_program_file(stat.file):
                continue
            key = (stat.function, stat.file, 0)
            ns, samples, lines = functions.get(key, (0, 0, {}))
            lines[stat.line] = lines.get(stat.line, 0) + stat.self_ns
            functions[key] = (ns + stat.self_ns, samples + stat.self_samples, lines)
        per_run.append(functions)
    largest = ordered[-1][1]
    whole = largest.total_weight_ns or 1
    sizes = tuple(float(n) for n, _ in ordered)
    result = []
    for key, (ns_big, _, lines_big) in per_run[-1].items():
        if not all(key in run and run[key][1] >= MIN_SAMPLES for run in per_run):
            continue
        seconds = tuple(run[key][0] / 1e9 for run in per_run)
        hottest = max(lines_big, key=lambda line: (lines_big[line], -line))
        result.append(
            Scaling(
                file=key[1],
                function=key[0],
                line=hottest,
                lines=tuple(sorted(lines_big)),
                sizes=sizes,
                seconds=seconds,
                slope=loglog_slope(sizes, seconds),
                share=100.0 * ns_big / whole,
            )
        )
    result.sort(key=lambda s: (-s.slope, s.file, s.line))
    return result


def superlinear_findings(
    runs: Sequence[tuple[float, Profile]],
    *,
    slope: float = DEFAULT_SLOPE,
    min_share: float = DEFAULT_MIN_SHARE,
) -> list[Finding]:
    """A ``warning`` (``error`` when it takes half the largest run) per program function whose
    time grows as ``n**k`` with ``k >= slope``, located at its hottest line."""
    findings = []
    for item in scaling(runs):
        if item.slope < slope or item.share < min_share:
            continue
        order = max(2, round(item.slope))
        times = ", ".join(f"n={n:g}: {t:.3f} s" for n, t in zip(item.sizes, item.seconds, strict=True))
        findings.append(
            Finding(
                rule=RULE,
                title=f"likely O(n^{order}) loop",
                severity="error" if item.share >= 50.0 else "warning",
                message=(
                    f"likely O(n^{order}): the time of {item.function} grows as n^{item.slope:.2f} "
                    f"({times}); it is {item.share:.1f}% of the largest run"
                ),
                measured=round(item.slope, 3),
                threshold=slope,
                unit="log-log slope",
                suggestions=(
                    "replace the inner scan with a set or dict lookup (x in set is O(1)), sort "
                    "once and compare neighbours, or use collections.Counter",
                ),
                location=Location(item.file, item.line, item.function),
                evidence={
                    "sizes": list(item.sizes),
                    "seconds": [round(t, 6) for t in item.seconds],
                    "lines": list(item.lines),
                    "share_percent": round(item.share, 2),
                },
            )
        )
    return findings
