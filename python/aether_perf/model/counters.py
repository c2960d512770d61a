"""CounterReading: what a set of hardware/software counters said over one stretch of time.

Recorded by ``aether_native.Counters`` (perf_event_open, with a /proc fallback) and analysed by
:func:`aether_perf.analysis.bottlenecks`. Kept here, with no native code, so readings can be
saved, reloaded, subtracted and analysed anywhere (and tests can build them by hand).

Availability is explicit: an event the machine could not count has ``available=False`` and a
``reason`` (ENOENT in a VM without a PMU, EACCES with the perf_event_paranoid value...), and every
derived metric that needs it is ``None`` -- never zero. When the kernel multiplexed counters,
``running_ns < enabled_ns`` and :attr:`EventCount.scaled` extrapolates ``value * enabled /
running``; :attr:`EventCount.coverage` says how much of the time the counter actually ran.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["SOURCE_PERF", "SOURCE_PROCFS", "CounterReading", "EventCount"]

SOURCE_PERF = "perf_event"
SOURCE_PROCFS = "procfs"


@dataclass(frozen=True, slots=True)
class EventCount:
    """One event's count. ``value`` is the raw count (``None`` when unavailable); ``enabled_ns``
    and ``running_ns`` are the kernel's TOTAL_TIME_ENABLED / TOTAL_TIME_RUNNING; ``source`` is
    ``"perf_event"`` or ``"procfs"`` (the fallback); ``user_only`` when kernel-mode counting was
    refused and the event counts user mode only; ``note`` says anything else worth knowing."""

    name: str
    value: int | None
    enabled_ns: int = 0
    running_ns: int = 0
    available: bool = True
    reason: str = ""
    errno: int | None = None
    source: str = SOURCE_PERF
    user_only: bool = False
    note: str = ""

    @property
    def coverage(self) -> float | None:
        """Fraction of the enabled time the counter was on the PMU (1.0: not multiplexed)."""
        if not self.available or self.value is None:
            return None
        if self.source != SOURCE_PERF:
            return 1.0
        if self.enabled_ns <= 0:
            return None
        return min(1.0, self.running_ns / self.enabled_ns)

    @property
    def scaled(self) -> float | None:
        """The count extrapolated over the whole enabled time; ``None`` when unavailable or when
        the counter never ran (a group that never fitted on the PMU)."""
        if not self.available or self.value is None:
            return None
        if self.source != SOURCE_PERF or self.running_ns == self.enabled_ns:
            return float(self.value)
        if self.running_ns <= 0:
            return None if self.enabled_ns > 0 else float(self.value)
        return self.value * self.enabled_ns / self.running_ns

    def __sub__(self, other: EventCount) -> EventCount:
        """This count minus an earlier one of the same event (interval mode)."""
        if not self.available or not other.available or self.value is None or other.value is None:
            reason = self.reason or other.reason or "unavailable in one of the readings"
            return replace(self, value=None, available=False, reason=reason, enabled_ns=0, running_ns=0)
        return replace(
            self,
            value=self.value - other.value,
            enabled_ns=self.enabled_ns - other.enabled_ns,
            running_ns=self.running_ns - other.running_ns,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "scaled": self.scaled,
            "enabled_ns": self.enabled_ns,
            "running_ns": self.running_ns,
            "coverage": self.coverage,
            "available": self.available,
            "reason": self.reason,
            "errno": self.errno,
            "source": self.source,
            "user_only": self.user_only,
            "note": self.note,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EventCount:
        return cls(
            name=str(data["name"]),
            value=None if data.get("value") is None else int(data["value"]),
            enabled_ns=int(data.get("enabled_ns", 0)),
            running_ns=int(data.get("running_ns", 0)),
            available=bool(data.get("available", True)),
            reason=str(data.get("reason", "")),
            errno=data.get("errno"),
            source=str(data.get("source", SOURCE_PERF)),
            user_only=bool(data.get("user_only", False)),
            note=str(data.get("note", "")),
        )


@dataclass(frozen=True, slots=True)
class CounterReading:
    """Counts of several events over ``duration_ns`` of wall time (since the counters started,
    or since the previous reading for a delta). ``threads`` holds per-thread readings (tid ->
    reading) when counting per thread; ``inherit`` says whether threads and child processes
    started after the counters were opened are included."""

    events: dict[str, EventCount]
    duration_ns: int = 0
    time_ns: int = 0
    inherit: bool = False
    threads: dict[int, CounterReading] = field(default_factory=dict)

    def __getitem__(self, name: str) -> EventCount:
        return self.events[name]

    def __contains__(self, name: object) -> bool:
        return name in self.events

    def value(self, name: str) -> float | None:
        """The scaled count of ``name``, or ``None`` when not measured or unavailable."""
        event = self.events.get(name)
        return None if event is None else event.scaled

    def missing(self, *names: str) -> list[str]:
        """Those of ``names`` that this reading cannot supply."""
        return [name for name in names if self.value(name) is None]

    def _ratio(self, numerator: str, denominator: str, factor: float = 1.0) -> float | None:
        top, bottom = self.value(numerator), self.value(denominator)
        if top is None or bottom is None or bottom == 0:
            return None
        return factor * top / bottom

    @property
    def ipc(self) -> float | None:
        """Instructions per cycle."""
        return self._ratio("instructions", "cycles")

    @property
    def cpi(self) -> float | None:
        """Cycles per instruction."""
        return self._ratio("cycles", "instructions")

    @property
    def cache_miss_rate(self) -> float | None:
        """Cache misses per instruction (the chapter's definition; its threshold is 5%)."""
        return self._ratio("cache-misses", "instructions")

    @property
    def cache_miss_ratio(self) -> float | None:
        """Cache misses per cache reference (what ``perf stat`` prints as "% of all cache refs")."""
        return self._ratio("cache-misses", "cache-references")

    @property
    def branch_mispredict_rate(self) -> float | None:
        """Branch mispredictions per instruction (the chapter's definition; threshold 2%)."""
        return self._ratio("branch-misses", "instructions")

    @property
    def branch_miss_ratio(self) -> float | None:
        """Branch mispredictions per branch."""
        return self._ratio("branch-misses", "branches")

    @property
    def mpki(self) -> float | None:
        """Cache misses per thousand instructions."""
        return self._ratio("cache-misses", "instructions", 1000.0)

    @property
    def branch_mpki(self) -> float | None:
        """Branch mispredictions per thousand instructions."""
        return self._ratio("branch-misses", "instructions", 1000.0)

    @property
    def frontend_stall_ratio(self) -> float | None:
        """Cycles the front end delivered nothing, per cycle (top-down's Frontend Bound proxy)."""
        return self._ratio("stalled-cycles-frontend", "cycles")

    @property
    def backend_stall_ratio(self) -> float | None:
        """Cycles the back end stalled, per cycle (top-down's Backend Bound proxy)."""
        return self._ratio("stalled-cycles-backend", "cycles")

    @property
    def ghz(self) -> float | None:
        """Effective clock while running: cycles per task-clock nanosecond."""
        return self._ratio("cycles", "task-clock")

    @property
    def cpus_utilized(self) -> float | None:
        """task-clock per wall-clock time: how many CPUs the program kept busy."""
        task = self.value("task-clock")
        if task is None or self.duration_ns <= 0:
            return None
        return task / self.duration_ns

    def per_second(self, name: str) -> float | None:
        """The event's rate over the reading's wall time."""
        value = self.value(name)
        if value is None or self.duration_ns <= 0:
            return None
        return value * 1e9 / self.duration_ns

    def metrics(self) -> dict[str, float | None]:
        """Every derived metric by name (``None`` where an input is unavailable)."""
        return {
            "ipc": self.ipc,
            "cpi": self.cpi,
            "cache_miss_rate": self.cache_miss_rate,
            "cache_miss_ratio": self.cache_miss_ratio,
            "branch_mispredict_rate": self.branch_mispredict_rate,
            "branch_miss_ratio": self.branch_miss_ratio,
            "mpki": self.mpki,
            "branch_mpki": self.branch_mpki,
            "frontend_stall_ratio": self.frontend_stall_ratio,
            "backend_stall_ratio": self.backend_stall_ratio,
            "ghz": self.ghz,
            "cpus_utilized": self.cpus_utilized,
        }

    def __sub__(self, other: CounterReading) -> CounterReading:
        """The counts between ``other`` (earlier) and this reading: the chapter's "current minus
        previous". Events missing from ``other`` are taken whole."""
        events = {
            name: (event - other.events[name]) if name in other.events else event
            for name, event in self.events.items()
        }
        threads = {
            tid: (reading - other.threads[tid]) if tid in other.threads else reading
            for tid, reading in self.threads.items()
        }
        return CounterReading(
            events=events,
            duration_ns=self.duration_ns - other.duration_ns,
            time_ns=self.time_ns,
            inherit=self.inherit,
            threads=threads,
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (scaled values and derived metrics included for readers' sake)."""
        return {
            "duration_ns": self.duration_ns,
            "time_ns": self.time_ns,
            "inherit": self.inherit,
            "events": [event.to_dict() for event in self.events.values()],
            "metrics": self.metrics(),
            "threads": {str(tid): reading.to_dict() for tid, reading in self.threads.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CounterReading:
        events = [EventCount.from_dict(item) for item in data.get("events", [])]
        return cls(
            events={event.name: event for event in events},
            duration_ns=int(data.get("duration_ns", 0)),
            time_ns=int(data.get("time_ns", 0)),
            inherit=bool(data.get("inherit", False)),
            threads={int(tid): cls.from_dict(item) for tid, item in data.get("threads", {}).items()},
        )
