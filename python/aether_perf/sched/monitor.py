"""SchedMonitor: poll the threads' scheduler counters while a program runs; deltas and rates.

A background thread (a bare ``_thread`` one, so it neither shows in ``threading.enumerate()`` nor
counts as a thread of the program's pools) reads every thread's counters each ``interval``. The
report holds, per thread, what changed between its first and last reading (a thread born
meanwhile counts from zero), migrations from ``se.nr_migrations`` (or, where the kernel lacks it,
the changes of the last-CPU field seen by polling, which undercounts) and a timeline of rates per
interval for the whole process. A ``threading.Thread`` started while monitoring reads its own
counters as it exits (``Thread._bootstrap_inner`` is wrapped meanwhile), so nothing it did is lost;
other threads (``_thread``, C threads) that exit between two polls lose their last interval. The
process-wide switch counts come from ``getrusage`` and include every thread.
"""

from __future__ import annotations

import _thread
import resource
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aether_perf.sched.procfs import ThreadCounters, read_task, read_tasks
from aether_perf.units import parse_duration

__all__ = ["SchedMonitor", "SchedReport", "ThreadSched", "TimelinePoint", "track"]


@dataclass(frozen=True, slots=True)
class ThreadSched:
    """What one thread did while monitored (times in nanoseconds)."""

    tid: int
    name: str
    cpu_ns: int
    run_delay_ns: int
    voluntary: int
    involuntary: int
    migrations: int
    migrations_exact: bool
    alive_s: float

    @property
    def switches(self) -> int:
        return self.voluntary + self.involuntary

    def to_dict(self) -> dict[str, Any]:
        return {
            "tid": self.tid,
            "name": self.name,
            "cpu_ns": self.cpu_ns,
            "run_delay_ns": self.run_delay_ns,
            "voluntary": self.voluntary,
            "involuntary": self.involuntary,
            "migrations": self.migrations,
            "migrations_exact": self.migrations_exact,
            "alive_s": self.alive_s,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ThreadSched:
        return cls(
            int(data["tid"]),
            str(data["name"]),
            int(data["cpu_ns"]),
            int(data["run_delay_ns"]),
            int(data["voluntary"]),
            int(data["involuntary"]),
            int(data["migrations"]),
            bool(data.get("migrations_exact", True)),
            float(data.get("alive_s", 0.0)),
        )


@dataclass(frozen=True, slots=True)
class TimelinePoint:
    """Process-wide rates over one polling interval ending ``t`` seconds after the start."""

    t: float
    switches_per_s: float
    migrations_per_s: float
    cpu_util: float  # CPU seconds per second (2.0 = two cores busy)

    def to_dict(self) -> dict[str, Any]:
        return {
            "t": self.t,
            "switches_per_s": self.switches_per_s,
            "migrations_per_s": self.migrations_per_s,
            "cpu_util": self.cpu_util,
        }


@dataclass(frozen=True, slots=True)
class SchedReport:
    """Per-thread deltas over ``duration`` seconds, and the rates per interval."""

    duration: float
    threads: tuple[ThreadSched, ...]
    timeline: tuple[TimelinePoint, ...] = field(default_factory=tuple)
    #: Process-wide switches from getrusage(RUSAGE_SELF): these include threads that exited
    #: between two polls, whose last per-thread counts are lost. None when not measured.
    process_voluntary: int | None = None
    process_involuntary: int | None = None

    @property
    def switches(self) -> int:
        """Context switches of the whole process (getrusage), else the sum over the threads."""
        if self.process_voluntary is not None and self.process_involuntary is not None:
            return self.process_voluntary + self.process_involuntary
        return sum(t.switches for t in self.threads)

    @property
    def switch_rate(self) -> float:
        """Context switches per second over all threads."""
        return self.switches / self.duration if self.duration > 0 else 0.0

    def thread(self, tid: int) -> ThreadSched:
        for t in self.threads:
            if t.tid == tid:
                return t
        raise KeyError(tid)

    def to_dict(self) -> dict[str, Any]:
        return {
            "duration": self.duration,
            "threads": [t.to_dict() for t in self.threads],
            "timeline": [p.to_dict() for p in self.timeline],
            "process_voluntary": self.process_voluntary,
            "process_involuntary": self.process_involuntary,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SchedReport:
        return cls(
            float(data["duration"]),
            tuple(ThreadSched.from_dict(t) for t in data.get("threads", ())),
            tuple(TimelinePoint(**p) for p in data.get("timeline", ())),
            data.get("process_voluntary"),
            data.get("process_involuntary"),
        )


def _python_names() -> dict[int, str]:
    return {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}


class SchedMonitor:
    """Poll this process's threads every ``interval`` (seconds or "100ms") between start and stop.

    Threads in ``exclude`` (native ids: a profiler's own threads) are left out of the report and
    their switches out of the process-wide counts, as are the poller's own.
    """

    def __init__(self, interval: float | str = 0.1, *, exclude: Iterable[int] = ()) -> None:
        self.interval = parse_duration(interval, name="interval", minimum=0.001, maximum=60.0)
        self._exclude = {int(tid) for tid in exclude}
        self._exited: dict[int, ThreadCounters] = {}
        self._saved_bootstrap: Any = None
        self._first: dict[int, ThreadCounters] = {}
        self._born: dict[int, float] = {}
        self._last: dict[int, ThreadCounters] = {}
        self._seen_moves: dict[int, int] = {}
        self._names: dict[int, str] = {}
        self._timeline: list[TimelinePoint] = []
        self._stop = threading.Event()
        self._done = _thread.allocate_lock()
        self._own_tid = 0
        self._start = 0.0
        self._end = 0.0
        self._running = False
        #: Set when the monitor is left as a context manager.
        self.report: SchedReport | None = None

    def exclude(self, tids: Iterable[int]) -> None:
        """Leave these threads out too (may be called while running)."""
        self._exclude.update(int(tid) for tid in tids)

    def _skipped(self, tid: int) -> bool:
        return tid == self._own_tid or tid in self._exclude

    @property
    def native_id(self) -> int | None:
        """The polling thread's native id (None until it runs)."""
        return self._own_tid or None

    def start(self) -> SchedMonitor:
        if self._running:
            raise RuntimeError("SchedMonitor is already running")
        self._running = True
        self._start = time.monotonic()
        self._rusage = resource.getrusage(resource.RUSAGE_SELF)
        self._first = read_tasks()
        self._last = dict(self._first)
        self._names = _python_names()
        self._wrap_thread_exit()
        self._done.acquire()
        _thread.start_new_thread(self._loop, ())
        return self

    def _loop(self) -> None:
        self._own_tid = threading.get_native_id()
        try:
            previous_t = self._start
            while not self._stop.wait(self.interval):
                previous_t = self._poll(previous_t)
        finally:
            self._done.release()

    def _poll(self, previous_t: float) -> float:
        now = time.monotonic()
        current = read_tasks()
        self._names.update(_python_names())
        switches = migrations = cpu = 0
        for tid, c in current.items():
            if self._skipped(tid):
                continue
            before = self._last.get(tid)
            if before is None:
                self._born.setdefault(tid, now)
                before_sw = before_mig = before_cpu = 0
            else:
                before_sw = before.voluntary + before.involuntary
                before_mig = before.migrations or 0
                before_cpu = before.cpu_ns
                if c.processor != before.processor:
                    self._seen_moves[tid] = self._seen_moves.get(tid, 0) + 1
            switches += c.voluntary + c.involuntary - before_sw
            migrations += (c.migrations or 0) - before_mig
            cpu += c.cpu_ns - before_cpu
        self._last.update(current)
        dt = now - previous_t
        if dt > 0:
            t = now - self._start
            self._timeline.append(TimelinePoint(t, switches / dt, migrations / dt, cpu / 1e9 / dt))
        return now

    def stop(self) -> SchedReport:
        """Stop polling and return what every thread did since :meth:`start`."""
        if not self._running:
            raise RuntimeError("SchedMonitor is not running")
        self._stop.set()
        with self._done:
            pass
        self._running = False
        self._unwrap_thread_exit()
        self._poll(self._timeline_end())
        self._end = time.monotonic()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return self._report(usage.ru_nvcsw - self._rusage.ru_nvcsw, usage.ru_nivcsw - self._rusage.ru_nivcsw)

    def _wrap_thread_exit(self) -> None:
        original = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]
        monitor = self

        def bootstrap_inner(thread: threading.Thread) -> None:
            try:
                original(thread)
            finally:
                tid = threading.get_native_id()
                counters = read_task(tid)
                if counters is not None:
                    monitor._exited[tid] = counters
                    monitor._names.setdefault(tid, thread.name)

        self._saved_bootstrap = original
        threading.Thread._bootstrap_inner = bootstrap_inner  # type: ignore[attr-defined]

    def _unwrap_thread_exit(self) -> None:
        if self._saved_bootstrap is not None:
            threading.Thread._bootstrap_inner = self._saved_bootstrap  # type: ignore[attr-defined]
            self._saved_bootstrap = None

    def _timeline_end(self) -> float:
        return self._start + (self._timeline[-1].t if self._timeline else 0.0)

    def _report(self, voluntary: int, involuntary: int) -> SchedReport:
        threads = []
        final = dict(self._last)
        for tid, counters in self._exited.items():
            if tid not in final or counters.cpu_ns >= final[tid].cpu_ns:
                final[tid] = counters
        for tid, last in sorted(final.items()):
            first = self._first.get(tid)
            base = (
                first
                if first is not None
                else ThreadCounters(tid, last.comm, "", last.processor, 0, 0, 0, 0, 0, 0)
            )
            if self._skipped(tid):
                voluntary -= last.voluntary - base.voluntary
                involuntary -= last.involuntary - base.involuntary
                continue
            exact = last.migrations is not None
            migrations = (
                (last.migrations or 0) - (base.migrations or 0) if exact else self._seen_moves.get(tid, 0)
            )
            born = self._born.get(tid, self._start)
            threads.append(
                ThreadSched(
                    tid=tid,
                    name=self._names.get(tid, last.comm),
                    cpu_ns=last.cpu_ns - base.cpu_ns,
                    run_delay_ns=last.run_delay_ns - base.run_delay_ns,
                    voluntary=last.voluntary - base.voluntary,
                    involuntary=last.involuntary - base.involuntary,
                    migrations=migrations,
                    migrations_exact=exact,
                    alive_s=self._end - born,
                )
            )
        duration = self._end - self._start
        timeline = tuple(self._timeline)
        return SchedReport(duration, tuple(threads), timeline, max(voluntary, 0), max(involuntary, 0))

    def __enter__(self) -> SchedMonitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self._running:
            self.report = self.stop()


def track(interval: float | str = 0.1, *, exclude: Iterable[int] = ()) -> SchedMonitor:
    """``with sched.track("50ms") as monitor: ...`` then ``monitor.report`` (a :class:`SchedReport`)."""
    return SchedMonitor(interval, exclude=exclude)
