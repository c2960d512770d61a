"""Hot spots: program lines that take more than a set share of the profile's time.

Lines (``hotspot.line``) and functions (``hotspot.function``: the self time of all a function's
lines, reported when no single line of it was hot enough, at its hottest line). A hot spot is not
a defect in itself (every program spends its time somewhere), so these findings
are ``info``: they say where optimising would pay. A line must also take at least ``min_time``
seconds, so a program that finishes in a blink has no hot spots worth a look.
"""

from __future__ import annotations

from aether_perf.analysis.lines import LineStat, line_stats
from aether_perf.analysis.program import is_program_file
from aether_perf.model.finding import Finding, Location
from aether_perf.model.profile import Profile

__all__ = [
    "DEFAULT_FUNCTION_SHARE",
    "DEFAULT_LINE_SHARE",
    "DEFAULT_MIN_TIME",
    "FUNCTION_RULE",
    "RULE",
    "hotspot_findings",
]

RULE = "hotspot.line"
FUNCTION_RULE = "hotspot.function"
#: Percent of the profile's total time (self time of the line).
DEFAULT_LINE_SHARE = 20.0
#: Percent of the profile's total time (self time of the function's lines together).
DEFAULT_FUNCTION_SHARE = 30.0
#: Seconds of self time below which a line is never reported.
DEFAULT_MIN_TIME = 0.05


def hotspot_findings(
    profile: Profile,
    *,
    share: float = DEFAULT_LINE_SHARE,
    min_time: float = DEFAULT_MIN_TIME,
    function_share: float = DEFAULT_FUNCTION_SHARE,
) -> list[Finding]:
    """One ``info`` finding per program line whose self time is at least ``share`` percent of the
    total and at least ``min_time`` seconds, hottest first; then one per program function whose
    lines together reach ``function_share`` percent (and ``min_time``) while none of them alone
    was reported."""
    findings = []
    stats = sorted(line_stats(profile).values(), key=lambda s: (-s.self_ns, s.file, s.line))
    whole = profile.total_weight_ns
    functions: dict[tuple[str, str], list[LineStat]] = {}
    for stat in stats:
        if stat.self_ns and is_program_file(stat.file):
            functions.setdefault((stat.file, stat.function), []).append(stat)
    reported: set[tuple[str, str]] = set()
    for stat in stats:
        if stat.self_pct < share or stat.self_ns < min_time * 1e9 or not is_program_file(stat.file):
            continue
        seconds = stat.self_ns / 1e9
        reported.add((stat.file, stat.function))
        findings.append(
            Finding(
                rule=RULE,
                title="hot line",
                severity="info",
                message=(
                    f"{stat.self_pct:.1f}% of the run's {profile.meta.mode} time "
                    f"({seconds:.3f} s, {stat.self_samples} samples) is spent on this line "
                    f"in {stat.function}"
                ),
                measured=round(stat.self_pct, 2),
                threshold=share,
                unit="%",
                suggestions=(
                    "look here first: do less work per iteration, hoist invariant work out of "
                    "the loop, or move the inner loop into a builtin or numpy",
                ),
                location=Location(stat.file, stat.line, stat.function),
                evidence={
                    "self_seconds": round(seconds, 6),
                    "total_seconds": round(stat.total_ns / 1e9, 6),
                    "cpu_percent": round(stat.cpu_pct, 2),
                    "samples": stat.self_samples,
                },
            )
        )
    for (file, function), lines in functions.items():
        self_ns = sum(s.self_ns for s in lines)
        pct = 100.0 * self_ns / whole if whole else 0.0
        if (file, function) in reported or pct < function_share or self_ns < min_time * 1e9:
            continue
        top = lines[0]  # stats were sorted hottest first
        findings.append(
            Finding(
                rule=FUNCTION_RULE,
                title="hot function",
                severity="info",
                message=(
                    f"{pct:.1f}% of the run's {profile.meta.mode} time ({self_ns / 1e9:.3f} s) is "
                    f"spent in {function} itself, over {len(lines)} lines; the hottest is line "
                    f"{top.line} ({top.self_pct:.1f}%)"
                ),
                measured=round(pct, 2),
                threshold=function_share,
                unit="%",
                suggestions=(
                    "look at this function's loops first: do less work per iteration, or move "
                    "the work into a builtin, a comprehension over a builtin, or numpy",
                ),
                location=Location(file, top.line, function),
                evidence={
                    "self_seconds": round(self_ns / 1e9, 6),
                    "lines": sorted(s.line for s in lines),
                },
            )
        )
    return findings
