"""`aether profile --locks --io --sched`: the recorders that run beside the sampler.

Each is started just before the target runs and stopped just after, and what it saw is stored
in the profile (aether_perf.analysis.concurrency.attach), so perf-report and the HTML report
show it with the samples.
"""

from __future__ import annotations

import contextlib
import os
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aether_perf.io import IOReport, IOTracker
    from aether_perf.locks import LockStats, LockTracker
    from aether_perf.model import Profile
    from aether_perf.sched import SchedMonitor, SchedReport


def _tids() -> set[int]:
    try:
        return {int(name) for name in os.listdir("/proc/self/task")}
    except OSError:
        return set()


class Trackers:
    """The requested recorders as one context manager."""

    def __init__(self, *, locks: bool, io: bool, sched: bool, sched_interval: float = 0.05) -> None:
        self.wanted = locks or io or sched
        self._locks, self._io, self._sched = locks, io, sched
        self._sched_interval = sched_interval
        self._stack = contextlib.ExitStack()
        self._lock_tracker: LockTracker | None = None
        self._io_tracker: IOTracker | None = None
        self._monitor: SchedMonitor | None = None
        self.lock_stats: list[LockStats] | None = None
        self.io_report: IOReport | None = None
        self.sched_report: SchedReport | None = None
        # Threads alive now belong to the program's process before aether started sampling; the
        # ones that appear by __enter__ (after Recording.start) are the sampler's own.
        self._before = _tids()
        if self.wanted:
            # Imported now, before sampling starts, so the profile does not show our imports.
            import aether_perf.analysis.concurrency
            import aether_perf.io
            import aether_perf.locks
            import aether_perf.report.findings_text
            import aether_perf.sched  # noqa: F401

    def __enter__(self) -> Trackers:
        if self._sched:
            from aether_perf.sched import SchedMonitor

            self._monitor = SchedMonitor(self._sched_interval, exclude=_tids() - self._before).start()
        if self._locks:
            from aether_perf.locks import track

            self._lock_tracker = self._stack.enter_context(track())
        if self._io:
            from aether_perf.io import track as track_io

            self._io_tracker = self._stack.enter_context(track_io())
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stack.close()
        if self._lock_tracker is not None:
            self.lock_stats = self._lock_tracker.stats()
        if self._io_tracker is not None:
            self.io_report = self._io_tracker.report
        if self._monitor is not None:
            self.sched_report = self._monitor.stop()

    @property
    def own_threads(self) -> set[int]:
        """Native ids of our own threads (the scheduling poller), to leave out of the profile."""
        tid = self._monitor.native_id if self._monitor is not None else None
        return {tid} if tid else set()

    def attach(self, profile: Profile) -> None:
        if not self.wanted:
            return
        from aether_perf.analysis.concurrency import attach

        attach(profile, locks=self.lock_stats, sched=self.sched_report, io=self.io_report)
