"""The diagnose sources: one small function per kind of evidence, registered in :data:`SOURCES`.

A source takes the run's :class:`Evidence` and the :class:`Settings` and returns findings; it
returns nothing when the evidence it reads is missing (no heap snapshot, a single run size), so
every source can be asked every time.

Where more sources go (wired after the concurrency/I-O and counters work merges): ``locks``
(``aether_perf.locks`` ``.findings(stats)`` over ``evidence.extra["locks"]``), ``gil``
(``aether_perf.analysis.gil.findings(evidence.profile)``), ``io`` (``evidence.extra["io"]``) and
``counters`` (``aether_perf.analysis.bottlenecks(evidence.extra["counters"])``): write one
function each below and add it to ``SOURCES``.
"""

from __future__ import annotations

from collections.abc import Callable

from aether_perf.analysis.allocations import allocation_findings
from aether_perf.analysis.hotspots import hotspot_findings
from aether_perf.analysis.superlinear import superlinear_findings
from aether_perf.diagnose.pipeline import Evidence, Settings
from aether_perf.model.finding import Finding

__all__ = ["SOURCES", "Source"]

Source = Callable[[Evidence, Settings], list[Finding]]


def hotspots(evidence: Evidence, settings: Settings) -> list[Finding]:
    if evidence.profile is None:
        return []
    return hotspot_findings(
        evidence.profile,
        share=settings.hot_share,
        min_time=settings.hot_min_time,
        function_share=settings.hot_function_share,
    )


def superlinear(evidence: Evidence, settings: Settings) -> list[Finding]:
    if len(evidence.scaling) < 2:
        return []
    return superlinear_findings(evidence.scaling, slope=settings.slope, min_share=settings.slope_min_share)


def allocations(evidence: Evidence, settings: Settings) -> list[Finding]:
    if evidence.heap is None:
        return []
    return allocation_findings(
        evidence.heap,
        min_growths=settings.min_growths,
        min_growth_bytes=settings.min_growth_bytes,
        heavy_share=settings.heavy_share,
        heavy_bytes=settings.heavy_bytes,
    )


#: Every source, by name, in the order they run. Add the lock, GIL, I/O and counter sources here.
SOURCES: dict[str, Source] = {
    "hotspots": hotspots,
    "superlinear": superlinear,
    "allocations": allocations,
}
