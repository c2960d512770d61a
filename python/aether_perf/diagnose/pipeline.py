"""The diagnose pipeline: what a run recorded (:class:`Evidence`), the thresholds (:class:`Settings`),
and :func:`diagnose`, which runs every registered source that has its data and orders the findings.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aether_perf.analysis.allocations import (
    DEFAULT_HEAVY_BYTES,
    DEFAULT_HEAVY_SHARE,
    DEFAULT_MIN_GROWTH_BYTES,
    DEFAULT_MIN_GROWTHS,
)
from aether_perf.analysis.hotspots import DEFAULT_FUNCTION_SHARE, DEFAULT_LINE_SHARE, DEFAULT_MIN_TIME
from aether_perf.analysis.superlinear import DEFAULT_MIN_SHARE, DEFAULT_SLOPE
from aether_perf.errors import InvalidArgument
from aether_perf.model.finding import SEVERITIES, Finding
from aether_perf.model.heap import HeapSnapshot
from aether_perf.model.profile import Profile

__all__ = ["Evidence", "Settings", "diagnose", "sort_findings"]


@dataclass
class Evidence:
    """What one diagnosed run recorded; a source whose data is missing reports nothing.

    ``scaling`` holds ``(n, profile)`` runs of the program at different input sizes (for the
    super-linear check); ``extra`` holds data of recorders the pipeline does not know by name
    (lock and I/O statistics, counter readings), keyed by the source that reads them.
    """

    profile: Profile | None = None
    heap: HeapSnapshot | None = None
    scaling: list[tuple[float, Profile]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    """Thresholds of the rules (see each rule's module for what they mean)."""

    hot_share: float = DEFAULT_LINE_SHARE
    hot_function_share: float = DEFAULT_FUNCTION_SHARE
    hot_min_time: float = DEFAULT_MIN_TIME
    slope: float = DEFAULT_SLOPE
    slope_min_share: float = DEFAULT_MIN_SHARE
    min_growths: int = DEFAULT_MIN_GROWTHS
    min_growth_bytes: int = DEFAULT_MIN_GROWTH_BYTES
    heavy_share: float = DEFAULT_HEAVY_SHARE
    heavy_bytes: int = DEFAULT_HEAVY_BYTES


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Errors first, then warnings, then info; within a severity by file and line."""
    rank = {name: i for i, name in enumerate(reversed(SEVERITIES))}

    def key(f: Finding) -> tuple[int, str, int, str]:
        loc = f.location
        return (rank[f.severity], loc.file if loc else "", loc.line if loc else 0, f.rule)

    return sorted(findings, key=key)


def diagnose(
    evidence: Evidence, settings: Settings | None = None, *, sources: Iterable[str] | None = None
) -> list[Finding]:
    """Run the registered sources (all, or those named in ``sources``) over ``evidence``."""
    from aether_perf.diagnose.sources import SOURCES

    chosen = list(SOURCES) if sources is None else list(sources)
    unknown = [name for name in chosen if name not in SOURCES]
    if unknown:
        raise InvalidArgument(f"unknown diagnose source {unknown[0]!r} (sources: {', '.join(SOURCES)})")
    settings = settings or Settings()
    findings: list[Finding] = []
    for name in chosen:
        findings.extend(SOURCES[name](evidence, settings))
    return sort_findings(findings)
