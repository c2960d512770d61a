"""The diagnose sources: one small function per kind of evidence, registered in :data:`SOURCES`.

A source takes the run's :class:`Evidence` and the :class:`Settings` and returns findings; it
returns nothing when the evidence it reads is missing (no heap snapshot, a single run size), so
every source can be asked every time.

The lock, scheduling and I/O sources read what ``aether profile --locks --io --sched`` (and
``aether diagnose``, through the same recorders) stored in the profile
(:mod:`aether_perf.analysis.concurrency`), so a saved profile given with ``--input`` is judged
like a fresh run. The GIL source needs a wall-mode profile (only wall mode samples threads that
wait); ``counters`` reads a :class:`CounterReading` from ``evidence.extra["counters"]`` or, for a saved
run, ``profile.meta.extra["counters"]`` (``CounterReading.to_dict()``; ``aether diagnose`` stores
it there so ``--save`` keeps it).

To add a source: write one function below and add it to ``SOURCES``.
"""

from __future__ import annotations

from collections.abc import Callable

from aether_perf import io as io_rules
from aether_perf import locks as lock_rules
from aether_perf import sched as sched_rules
from aether_perf.analysis import concurrency, gil
from aether_perf.analysis.allocations import allocation_findings
from aether_perf.analysis.bottlenecks import bottlenecks
from aether_perf.analysis.hotspots import hotspot_findings
from aether_perf.analysis.superlinear import superlinear_findings
from aether_perf.diagnose.pipeline import Evidence, Settings
from aether_perf.errors import ProfileFormatError
from aether_perf.model.counters import CounterReading
from aether_perf.model.finding import Finding

__all__ = ["COUNTERS_KEY", "MIN_SWITCHES", "RULE_COUNTERS_NOT_EVALUATED", "SOURCES", "Source"]

RULE_COUNTERS_NOT_EVALUATED = "counters.not-evaluated"

#: ``Evidence.extra`` key of the counter reading of the (largest) sampled run.
COUNTERS_KEY = "counters"
#: A context-switch *rate* is judged only over at least this many switches (a second's worth at
#: the chapter's 1000/s): a run of a few tens of ms switches a few dozen times when its threads
#: start and join, or when another process takes the CPU, and "2,800/s" over 40 ms says nothing.
MIN_SWITCHES = 1000

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


def _recorded(evidence: Evidence) -> concurrency.Concurrency:
    if evidence.profile is None:
        return concurrency.Concurrency()
    return concurrency.load(evidence.profile)


def locks(evidence: Evidence, settings: Settings) -> list[Finding]:
    """Contended locks (average wait over 1 ms), located at the line that created the lock."""
    stats = _recorded(evidence).locks
    return lock_rules.findings(stats) if stats is not None else []


def sched(evidence: Evidence, settings: Settings) -> list[Finding]:
    """Context-switch rate, CPU migrations and load imbalance of the program's threads."""
    report = _recorded(evidence).sched
    if report is None:
        return []
    found = sched_rules.findings(report)
    if report.switches < MIN_SWITCHES:
        found = [f for f in found if f.rule != sched_rules.RULE_SWITCHES]
    return found


def io(evidence: Evidence, settings: Settings) -> list[Finding]:
    """Slow disk and network I/O: throughput, per-call latency, peer latency, loss, bandwidth."""
    report = _recorded(evidence).io
    return io_rules.findings(report) if report is not None else []


def gil_contention(evidence: Evidence, settings: Settings) -> list[Finding]:
    """Threads waiting for the GIL; a cpu-mode profile cannot tell (only wall mode samples
    waiting threads), so it yields nothing here and the report says why in a note."""
    profile = evidence.profile
    if profile is None or profile.meta.mode != "wall" or not len(profile):
        return []
    return [f for f in gil.findings(profile) if f.evaluated]


def _reading(evidence: Evidence) -> CounterReading | None:
    """The counters of the run: ``evidence.extra``, else what the profile stored (a saved run)."""
    reading = evidence.extra.get(COUNTERS_KEY)
    if isinstance(reading, CounterReading):
        return reading
    stored = evidence.profile.meta.extra.get(COUNTERS_KEY) if evidence.profile is not None else None
    if stored is None:
        return None
    try:
        return CounterReading.from_dict(stored)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProfileFormatError(f"the profile's counter reading is malformed: {exc}") from None


def counters(evidence: Evidence, settings: Settings) -> list[Finding]:
    """The micro-architectural rules over the run's counters. Rules whose counters the machine
    could not count (no PMU in a VM, perf_event_paranoid) come back as info with
    ``evaluated=False``, saying which counter is missing and why: not a problem, and not a pass."""
    reading = _reading(evidence)
    if reading is None:
        return []
    found = bottlenecks(reading)
    switches = reading.value("context-switches")
    if _recorded(evidence).sched is not None or (switches is not None and switches < MIN_SWITCHES):
        # With the scheduling monitor on, it judges the same rate (per thread, too): one is enough.
        found = [f for f in found if f.rule != sched_rules.RULE_SWITCHES]
    skipped = [f for f in found if not f.evaluated]
    if len(skipped) < 2:
        return found
    return [f for f in found if f.evaluated] + [_not_evaluated(reading, skipped)]


def _not_evaluated(reading: CounterReading, skipped: list[Finding]) -> Finding:
    """One info finding for every counter rule that could not run (on a machine without a PMU
    that is all the hardware ones, for the same reason: one line says it, not five)."""
    rules = {f.rule: list(f.evidence.get("missing", ())) for f in skipped}
    by_reason: dict[str, list[str]] = {}
    for name in dict.fromkeys(name for names in rules.values() for name in names):
        event = reading.events.get(name)
        reason = "not measured" if event is None else (event.reason or "unavailable")
        by_reason.setdefault(reason, []).append(name)
    why = "; ".join(f"{', '.join(names)} ({reason})" for reason, names in by_reason.items())
    return Finding(
        rule=RULE_COUNTERS_NOT_EVALUATED,
        title="Counter rules not evaluated",
        severity="info",
        message=f"not evaluated: {', '.join(rules)}: missing counters {why}",
        evidence={"rules": rules},
        evaluated=False,
    )


#: Every source, by name, in the order they run.
SOURCES: dict[str, Source] = {
    "hotspots": hotspots,
    "superlinear": superlinear,
    "allocations": allocations,
    "locks": locks,
    "sched": sched,
    "io": io,
    "gil": gil_contention,
    "counters": counters,
}
