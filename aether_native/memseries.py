"""The memory-series recorder: RSS and the tracked heap, read periodically while a tracker runs.

A bare ``_thread`` thread (not ``threading``: a Thread object, its Event and its registry entry
would be allocations in the tracked heap, and it would show in ``threading.enumerate()``) wakes
every interval and appends three integers to ``array('q')`` buffers: CLOCK_MONOTONIC minus the
tracking start, the C core's exact ``current_bytes`` (read without building a dict), and RSS from
``/proc/self/statm`` (``os.pread`` on a descriptor opened once).

**Why our own allocations stay out of the heap it measures.** The thread calls
``_core.alloc_ignore_current_thread(True)`` before anything else, so the C hooks skip every
allocation it makes (the ints, the ``bytes`` of a statm read, the arrays' growth); what
:meth:`MemorySeriesRecorder.start` makes on the calling thread while tracking runs (the new
thread's state and bootstrap, a few hundred bytes) is tracked, and mostly freed when the thread
ends at :meth:`~MemorySeriesRecorder.stop`. Frees
the thread makes of its own ignored blocks count as ``foreign_frees`` in the tracker's diagnostics.
The tracker makes its recorder (and the arrays) before tracking starts and reads the series out
after it stops, so none of that is tracked either.
RSS does include our buffers: 24 bytes a point, 2.4 KB a second at 10 ms. The points are capped
at :data:`MAX_POINTS` by halving (every second point kept, the interval doubled), so a day-long run
still holds at most ~2.4 MB.

The thread holds the GIL only for the few bytecodes of one tick (it sleeps in ``lock.acquire(
timeout)``, which releases it), so a program running pure Python loses about one GIL switch per
interval.
"""

from __future__ import annotations

import _thread
import os
from array import array
from collections.abc import Callable

from aether_perf.model.memory_series import MemorySeries

from aether_native import _core

__all__ = ["MAX_POINTS", "MemorySeriesRecorder"]

#: Above this many points the series is thinned to every second point and the interval doubled.
MAX_POINTS = 100_000
_STATM = "/proc/self/statm"


class MemorySeriesRecorder:
    """Records a :class:`MemorySeries` from :meth:`start` (given the tracker's start on
    CLOCK_MONOTONIC) to :meth:`stop`."""

    def __init__(self, interval_ns: int) -> None:
        self.interval_ns = interval_ns
        self._origin_ns = 0
        self._times = array("q")
        self._heap = array("q")
        self._rss = array("q")
        self._stride = 1  # record every _stride-th tick (doubles when the buffers are thinned)
        self._ticks = 0
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._fd = -1
        self._has_rss = False
        self._pid = 0
        self._limit = -1  # see on_exceed
        self._on_exceed: Callable[[], None] | None = None
        self._period_ns = 0  # see every
        self._next_period_ns = 0
        self._on_period: Callable[[], None] | None = None
        self._stop = _thread.allocate_lock()
        self._done = _thread.allocate_lock()
        self._running = False

    def start(self, origin_ns: int) -> None:
        self._origin_ns = origin_ns
        self._pid = os.getpid()
        try:
            self._fd = os.open(_STATM, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            self._fd = -1  # not Linux, or no procfs: the heap is still recorded
        self._has_rss = self._fd >= 0
        self._stop.acquire()
        self._done.acquire()
        self._running = True
        _thread.start_new_thread(self._run, ())

    def on_exceed(self, limit: int, callback: Callable[[], None]) -> None:
        """Call ``callback`` once, on the recorder thread (GIL held, allocations still ignored
        after it returns), at the first tick that sees the tracked heap above ``limit`` bytes.
        Set before :meth:`start`."""
        self._limit = limit
        self._on_exceed = callback

    def every(self, interval_ns: int, callback: Callable[[], None]) -> None:
        """Call ``callback`` on the recorder thread (as for :meth:`on_exceed`) every
        ``interval_ns`` (at the first tick after each deadline). Set before :meth:`start`."""
        self._period_ns = interval_ns
        self._on_period = callback

    def _call(self, callback: Callable[[], None]) -> None:
        try:
            callback()
        finally:
            _core.alloc_ignore_current_thread(True)  # the callback may have reset it

    def _rss_now(self) -> int:
        if self._fd < 0:
            return 0
        try:
            fields = os.pread(self._fd, 128, 0).split()
            return int(fields[1]) * self._page
        except (OSError, IndexError, ValueError):
            return 0

    def _tick(self) -> None:
        self._ticks += 1
        heap = _core.alloc_current_bytes()
        if self._on_exceed is not None and heap > self._limit >= 0:
            callback, self._on_exceed = self._on_exceed, None
            self._call(callback)
        if self._on_period is not None:
            now = _core.clock_ns()
            if not self._next_period_ns:
                self._next_period_ns = now + self._period_ns
            elif now >= self._next_period_ns:
                self._call(self._on_period)
                self._next_period_ns = _core.clock_ns() + self._period_ns
        if self._ticks % self._stride:
            return
        self._times.append(max(0, _core.clock_ns() - self._origin_ns))
        self._heap.append(heap)
        self._rss.append(self._rss_now())
        if len(self._times) >= MAX_POINTS:
            for column in (self._times, self._heap, self._rss):
                del column[1::2]
            self._stride *= 2

    def _safe_tick(self) -> None:
        # Out of memory (the program's doing, or an RLIMIT_AS): skip the point, keep the thread.
        try:
            self._tick()
        except MemoryError:
            pass

    def _run(self) -> None:
        _core.alloc_ignore_current_thread(True)
        try:
            tid = _core.exclude_current_thread()  # never sampled by a CPU Sampler beside us
        except OSError:
            tid = 0
        timeout = self.interval_ns / 1e9
        try:
            self._safe_tick()
            while not self._stop.acquire(True, timeout):
                self._safe_tick()
            self._safe_tick()  # the state at stop
        finally:
            if tid:
                _core.unexclude_thread(tid)
            self._done.release()

    def stop(self) -> None:
        """Stop the thread, waiting for its last point (then :meth:`series` is final)."""
        if self._running:
            self._running = False
            if os.getpid() == self._pid:  # in a forked child the thread does not exist
                self._stop.release()
                self._done.acquire()
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def series(self) -> MemorySeries:
        """The points so far (a copy; safe to call while running)."""
        n = min(len(self._times), len(self._heap), len(self._rss))
        return MemorySeries(
            interval_ns=self.interval_ns * self._stride,
            time_ns=list(self._times[:n]),
            heap_bytes=list(self._heap[:n]),
            rss_bytes=list(self._rss[:n]),
            has_rss=self._has_rss,
        )
