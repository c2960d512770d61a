"""Hot spots: program lines that take more than a set share of the profile's time.

A hot line is not a defect in itself (every program spends its time somewhere), so these findings
are ``info``: they say where optimising would pay. A line must also take at least ``min_time``
seconds, so a program that finishes in a blink has no hot spots worth a look.
"""

from __future__ import annotations

from aether_perf.analysis.lines import line_stats
from aether_perf.analysis.program import is_program_file
from aether_perf.model.finding import Finding, Location
from aether_perf.model.profile import Profile

__all__ = ["DEFAULT_LINE_SHARE", "DEFAULT_MIN_TIME", "RULE", "hotspot_findings"]

RULE = "hotspot.line"
#: Percent of the profile's total time (self time of the line).
DEFAULT_LINE_SHARE = 20.0
#: Seconds of self time below which a line is never reported.
DEFAULT_MIN_TIME = 0.05


def hotspot_findings(
    profile: Profile, *, share: float = DEFAULT_LINE_SHARE, min_time: float = DEFAULT_MIN_TIME
) -> list[Finding]:
    """One ``info`` finding per program line whose self time is at least ``share`` percent of the
    total and at least ``min_time`` seconds, hottest first."""
    findings = []
    stats = sorted(line_stats(profile).values(), key=lambda s: (-s.self_ns, s.file, s.line))
    for stat in stats:
        if stat.self_pct < share or stat.self_ns < min_time * 1e9 or not is_program_file(stat.file):
            continue
        seconds = stat.self_ns / 1e9
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
    return findings
