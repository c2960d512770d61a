"""AllocationTracker: the public allocation-tracking API over the C core (csrc/alloc.c).

    with AllocationTracker(mode="exact") as t:        # or mode="sampled", sample_rate="512KiB"
        run()
    snap = t.snapshot()        # the blocks live at stop: an aether_perf HeapSnapshot
    stats = t.statistics()     # exact totals: allocated/freed bytes and blocks, current, peak

The tracker hooks the RAW, MEM and OBJ allocator domains (PyMem_SetAllocator). Exact mode records
every block allocated after ``start()`` with its Python stack; sampled mode records the size of
every block (so the totals stay exact) but a stack only for blocks hit by Poisson byte sampling
(mean ``sample_rate`` bytes), weighted by ``1 / (1 - exp(-size / rate))`` so sums are unbiased.
Only one tracker may run at a time; it can run alongside a :class:`~aether_native.Sampler`.
Every ``series_interval`` (10 ms; None for none) a background thread records RSS and the tracked
heap into a :class:`~aether_perf.model.memory_series.MemorySeries` (``snapshot().series``); see
:mod:`aether_native.memseries` for why its own allocations stay out of the heap.
"""

from __future__ import annotations

import errno
import os
import platform
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aether_perf.errors import InvalidArgument, SamplerBusyError, SamplerStateError
from aether_perf.units import parse_duration, parse_size

from aether_native import _core

if TYPE_CHECKING:
    from aether_perf.model.heap import HeapMeta, HeapSnapshot
    from aether_perf.model.memory_series import MemorySeries

    from aether_native.memseries import MemorySeriesRecorder

__all__ = ["DEFAULT_SAMPLE_RATE", "MODES", "AllocationTracker"]

MODES = ("exact", "sampled")
#: Go's MemProfileRate: about 2k live samples per GiB, ~10% error on a 50 MiB site.
DEFAULT_SAMPLE_RATE = 512 * 1024
#: Frames kept per allocation stack (the innermost ones).
DEFAULT_MAX_DEPTH = 128
#: Time between two points of the memory series (RSS and tracked heap over time).
DEFAULT_SERIES_INTERVAL = "10ms"

_lock = threading.Lock()
_active: AllocationTracker | None = None


class AllocationTracker:
    """Track the Python allocator domains between :meth:`start` and :meth:`stop`.

    ``peak_interval`` (exact mode; seconds or "10ms") starts a poller thread that calls
    :meth:`capture_peak` at that interval, so :meth:`peak_snapshot` misses only peaks shorter than
    it. ``native=True`` also tracks what C extensions (and the libraries they load) allocate with
    malloc & co. and anonymous mmap, by patching their GOT slots while the tracker runs (see
    csrc/got.h): a numpy array's data shows up under the Python line that created it.

    Raises :class:`InvalidArgument` for an unknown mode or an unparsable/out-of-range sample rate,
    :class:`SamplerBusyError` when another tracker is running, :class:`SamplerStateError` for
    calls out of order (snapshot before start, stop when not running)."""

    def __init__(
        self,
        mode: str = "exact",
        sample_rate: str | int = DEFAULT_SAMPLE_RATE,
        max_depth: int = DEFAULT_MAX_DEPTH,
        series_interval: str | float | None = DEFAULT_SERIES_INTERVAL,
        native: bool = False,
        peak_interval: str | float | None = None,
    ) -> None:
        if mode not in MODES:
            raise InvalidArgument(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        rate = parse_size(sample_rate, name="sample_rate", minimum=1)
        if (
            isinstance(max_depth, bool)
            or not isinstance(max_depth, int)
            or not 1 <= max_depth <= _core.ALLOC_MAX_DEPTH
        ):
            raise InvalidArgument(
                f"max_depth must be an integer in 1..{_core.ALLOC_MAX_DEPTH}, got {max_depth!r}"
            )
        # None: no memory series. 100us..1h: below that the thread would cost more than it shows.
        self.series_interval_ns = 0
        if series_interval is not None:
            seconds = parse_duration(series_interval, name="series_interval", minimum=1e-4, maximum=3600)
            self.series_interval_ns = round(1e9 * seconds)
        # Made now and after each stop, never while tracking: its arrays would be tracked as ours.
        self._recorder: MemorySeriesRecorder | None = self._new_recorder()
        self._series: MemorySeries | None = None
        #: Why the live blocks could not be read at stop (None when they were).
        self.capture_error: str | None = None
        self._over: tuple[Any, ...] | None = None  # see capture_over
        self.mode = mode
        self.sample_rate = rate if mode == "sampled" else 0
        self.max_depth = max_depth
        if not isinstance(native, bool):
            raise InvalidArgument(f"native must be True or False, got {native!r}")
        self.native = native
        self.peak_interval = (
            None
            if peak_interval is None
            else parse_duration(peak_interval, name="peak_interval", minimum=0.001, maximum=60.0)
        )
        if self.peak_interval is not None and mode != "exact":
            raise InvalidArgument("peak_interval needs mode='exact' (the peak snapshot is exact-mode only)")
        self._poller: threading.Thread | None = None
        self._poll_stop = threading.Event()
        self._session: _core.HeapSession | None = None
        self._start_time = 0.0

    def _new_recorder(self) -> MemorySeriesRecorder | None:
        if not self.series_interval_ns:
            return None
        from aether_native.memseries import MemorySeriesRecorder

        return MemorySeriesRecorder(self.series_interval_ns)

    @property
    def running(self) -> bool:
        return self._session is not None and bool(self._session.running)

    def start(self) -> AllocationTracker:
        global _active
        with _lock:
            if _active is not None or _core.alloc_running():
                raise SamplerBusyError("another AllocationTracker is already running in this process")
            session = _core.HeapSession()
            code = _core.ALLOC_EXACT if self.mode == "exact" else _core.ALLOC_SAMPLED
            try:
                origin_ns = session.start(code, self.sample_rate, self.max_depth)
            except OSError as exc:
                if exc.errno == errno.EBUSY:
                    raise SamplerBusyError(
                        "another AllocationTracker is already running in this process"
                    ) from None
                raise
            if self.native:
                try:
                    session.start_native()
                except OSError:
                    session.stop()
                    raise
            self._session = session
            self._start_time = time.time()
            _active = self
            if self._recorder is not None:
                self._recorder.start(origin_ns)
            if self.peak_interval is not None:
                self._poll_stop.clear()
                self._poller = threading.Thread(
                    target=self._poll_peaks, args=(session, self.peak_interval), daemon=True
                )
                self._poller.start()
        return self

    def _poll_peaks(self, session: _core.HeapSession, interval: float) -> None:
        """The peak poller: capture_peak() every `interval` seconds, its own allocations left out
        so it never adds to the heap it watches."""
        _core.alloc_ignore_current_thread(True)
        while not self._poll_stop.wait(interval):
            session.capture_peak()

    def stop(self, *, before_capture: Callable[[], object] | None = None) -> AllocationTracker:
        """Stop tracking; snapshot() and statistics() then describe the state at this moment.

        ``before_capture`` is called once the hooks no longer record and before the live blocks
        are read: memory it frees (say, a program's data after it ran out of memory) is still in
        the snapshot, and the capture has room to run. If memory runs out anyway, stop() still
        stops, ``capture_error`` says why, and snapshot() retries, falling back to the totals and
        the memory series without the blocks."""
        global _active
        with _lock:
            if self._session is None or not self._session.running:
                raise SamplerStateError("stop() called on an AllocationTracker that is not running")
            if self._poller is not None:
                self._poll_stop.set()
                self._poller.join()
                self._poller = None
            if self._recorder is not None:
                self._recorder.stop()  # first: its last point is the heap just before stop
            try:
                self._session.stop(before_capture)
            except MemoryError:
                self.capture_error = "MemoryError"
            finally:
                _active = None
            try:
                if self._recorder is not None:
                    self._series = self._recorder.series()
                    self._recorder = self._new_recorder()  # fresh for a restart
            except MemoryError:
                self._recorder = None
        return self

    def __enter__(self) -> AllocationTracker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.running:
            self.stop()

    def _require_session(self, what: str) -> _core.HeapSession:
        if self._session is None:
            raise SamplerStateError(f"{what}() called before start()")
        return self._session

    def capture_over(self, limit: str | int) -> None:
        """Before :meth:`start`: when the tracked heap first exceeds ``limit`` (a size), capture the
        live blocks then (read back with :meth:`over_limit_snapshot`). The check runs on the
        memory-series thread, so it sees the heap every ``series_interval``: a spike shorter than
        that can be missed. Raises :class:`SamplerStateError` without a series or once started."""
        nbytes = parse_size(limit, name="limit", minimum=0)
        if self._recorder is None or self.running:
            raise SamplerStateError("capture_over() needs a memory series and must come before start()")
        self._over = None

        def capture() -> None:
            session = self._require_session("snapshot")
            live = session.live()  # made with this thread's allocations ignored
            _core.alloc_ignore_current_thread(True)  # live() ends by tracking this thread again
            stats = session.stats()
            stats["stop_ns"] = _core.clock_ns()  # the moment of the capture
            self._over = (live, stats)

        self._recorder.on_exceed(nbytes, capture)

    def checkpoint_every(self, interval: str | float, callback: Callable[[HeapSnapshot], object]) -> None:
        """Before :meth:`start`: every ``interval`` while tracking, call ``callback`` with a snapshot
        of the blocks live then (``meta.extra["checkpoint"]`` True), made on the memory-series
        thread with its allocations ignored. It holds the GIL while it builds the snapshot (0.15 s
        per million live blocks here, plus 0.5 s to save one), so keep the interval long. Raises
        :class:`SamplerStateError` without a memory series or once started."""
        seconds = parse_duration(interval, name="checkpoint interval", minimum=0.01)
        if self._recorder is None or self.running:
            raise SamplerStateError("checkpoint_every() needs a memory series and must come before start()")
        recorder = self._recorder

        def checkpoint() -> None:
            session = self._require_session("snapshot")
            live = session.live()
            _core.alloc_ignore_current_thread(True)  # live() ends by tracking this thread again
            stats = session.stats()
            stats["stop_ns"] = _core.clock_ns()
            frames, stacks, columns = self._columns(live)
            snap = self._build(frames, stacks, columns, stats, series=recorder.series())
            snap.meta.extra["checkpoint"] = True
            callback(snap)

        recorder.every(round(seconds * 1e9), checkpoint)

    def over_limit_snapshot(self) -> HeapSnapshot | None:
        """The live blocks when the heap first exceeded the :meth:`capture_over` limit (None if it
        never did, or was not seen to)."""
        over = self._over
        if over is None:
            return None
        live, stats = over
        frames, stacks, columns = self._columns(live)
        return self._build(frames, stacks, columns, stats, series=None)

    def memory_series(self) -> MemorySeries | None:
        """RSS and the tracked heap over time, so far (None with ``series_interval=None``)."""
        session = self._require_session("memory_series")
        if session.running and self._recorder is not None:
            return self._recorder.series()
        return self._series

    def statistics(self) -> dict[str, int]:
        """Exact totals since start (in both modes): ``allocated_bytes``, ``allocations``,
        ``freed_bytes``, ``frees`` (frees of blocks allocated since start), ``current_bytes``,
        ``peak_bytes``, ``live_blocks``, ``threads`` (threads that allocated or freed), plus
        diagnostic counters (``sampled_allocations``, ``stacks``, ``unattributed``,
        ``untracked``, ``foreign_frees``). ``peak_bytes`` is exact in exact mode; in sampled
        mode it is taken from per-thread nets flushed every 64 KiB, so it is within 64 KiB per
        thread of the true high-water mark."""
        stats = self._require_session("statistics").stats()
        stats.pop("start_ns", None)
        stats.pop("stop_ns", None)
        return stats

    def thread_statistics(self) -> dict[int, dict[str, int]]:
        """Exact totals per thread id (in both modes): ``allocated_bytes``, ``allocations``,
        ``freed_bytes``, ``frees``. A free counts on the thread that freed, so a thread's
        allocated minus freed may be negative. They sum to :meth:`statistics`' totals."""
        return self._require_session("thread_statistics").threads()

    def capture_peak(self) -> bool:
        """Exact mode: copy the per-stack live bytes now if the heap is above the last captured
        peak; True if a new peak was captured. The tracker captures by itself each time the heap
        grows 1/16 + 1 MiB past the last capture and once at stop; a poller (e.g. every 10 ms)
        calling this narrows the gap to the true high-water mark to what happens between two
        polls. Cheap when there is no new peak; safe from any thread."""
        if self.mode != "exact" or self._session is None:
            return False
        return self._session.capture_peak()

    def peak_snapshot(self) -> HeapSnapshot:
        """The stacks live at the heap's high-water mark (exact mode): their live bytes and blocks
        at the last peak capture, one row per block (the C core keeps per-stack totals only, so
        a row's size is its stack's mean block size; per-stack sums are exact).
        The capture is the highest heap level seen at a capture point (see :meth:`capture_peak`),
        so it is within 1/16 + 1 MiB of the true peak without a poller, and exact when the peak
        was held across a poll or reached at stop. ``meta.current_bytes`` is the heap at the
        capture, ``meta.extra["peak_at_s"]`` when it was taken (seconds since start)."""
        import numpy as np
        from aether_perf.model.frame import Frame
        from aether_perf.model.heap import HeapSnapshot

        session = self._require_session("peak_snapshot")
        if self.mode != "exact":
            raise SamplerStateError(
                "peak_snapshot() needs mode='exact' (sampled mode keeps no per-stack totals)"
            )
        if session.forked:
            raise SamplerStateError(
                "peak_snapshot(): this tracker was running when the process forked; "
                "the child keeps only its totals (statistics())"
            )
        frames, stacks, columns, info = session.peak_stacks()
        nbytes = np.asarray(columns["bytes"], dtype=np.int64)
        count = np.asarray(columns["count"], dtype=np.int64)
        # One row per block, as exact-mode snapshots have: the C core keeps per-stack totals
        # only, so a stack's blocks share its bytes evenly (the first bytes % count get one
        # more), which keeps every sum exact while single block sizes are the stack's mean.
        stack = np.repeat(np.asarray(columns["stack"], dtype=np.int32), count)
        base = np.repeat(nbytes // np.maximum(count, 1), count)
        starts = np.cumsum(count) - count
        rank = np.arange(len(stack), dtype=np.int64) - np.repeat(starts, count)
        size = base + (rank < np.repeat(nbytes % np.maximum(count, 1), count))
        meta = self._meta(session.stats())
        meta.current_bytes = int(info["heap_bytes"])
        meta.extra["peak"] = True
        meta.extra["peak_at_s"] = info["at_ns"] / 1e9
        return HeapSnapshot(
            [Frame(function=q, file=f, line=line, first_line=first) for q, f, line, first in frames],
            stacks,
            stack=stack,
            size=size.astype(np.int64),
            bytes=size.astype(np.int64),
            count=np.ones(len(stack), dtype=np.float64),
            tid=np.full(len(stack), -1, dtype=np.int64),
            time_ns=np.full(len(stack), int(info["at_ns"]), dtype=np.int64),
            meta=meta,
        )

    def raw_snapshot(self) -> tuple[list[tuple[str, str, int, int]], list[tuple[int, ...]], dict[str, Any]]:
        """The recording layer's output: (frames, stacks, numpy columns stack/size/bytes/count/
        tid/time_ns), without building a HeapSnapshot."""
        session = self._require_session("snapshot")
        if session.forked:
            raise SamplerStateError(
                "snapshot(): this tracker was running when the process forked; "
                "the child keeps only its totals (statistics())"
            )
        return self._columns(session.live())

    def _columns(
        self, live: tuple[list[tuple[str, str, int, int]], list[tuple[int, ...]], dict[str, bytes]]
    ) -> tuple[list[tuple[str, str, int, int]], list[tuple[int, ...]], dict[str, Any]]:
        import numpy as np

        frames, stacks, raw = live
        size = np.frombuffer(raw["size"], dtype="<i8")
        if self.mode == "exact":
            weight = np.ones(len(size), dtype=np.float64)
            nbytes = size.copy()
        else:
            # P(a block of s bytes holds a sample point) = 1 - exp(-s/R); its inverse unbiases.
            weight = 1.0 / -np.expm1(-size.astype(np.float64) / self.sample_rate)
            nbytes = np.rint(size * weight).astype(np.int64)
        columns = {
            "stack": np.frombuffer(raw["stack"], dtype="<i4").astype(np.int32),
            "size": size.astype(np.int64),
            "bytes": nbytes,
            "count": weight,
            "tid": np.frombuffer(raw["tid"], dtype="<i8").astype(np.int64),
            "time_ns": np.frombuffer(raw["time_ns"], dtype="<i8").astype(np.int64),
        }
        return frames, stacks, columns

    def sites(self) -> list[dict[str, Any]]:
        """What each source line allocated since start, freed or not (the live snapshot forgets
        what was freed): one dict per innermost frame ``file``, ``line``, ``function`` with
        ``allocations`` and ``bytes`` (exact counts in exact mode, unbiased estimates in sampled
        mode), ``growths`` (reallocs that grew a block: a list or bytes object resized again and
        again) and ``samples`` (blocks recorded with a stack). Biggest ``bytes`` first."""
        frames, stacks, rows = self._require_session("sites").sites()
        merged: dict[tuple[str, int, str], list[float]] = {}
        for stack_index, hits, count, nbytes, growths in rows:
            stack = stacks[stack_index]
            qualname, file, line, _first = frames[stack[-1]] if stack else ("", "", 0, 0)
            total = merged.setdefault((file, line, qualname), [0, 0.0, 0.0, 0.0])
            total[0] += hits
            total[1] += count
            total[2] += nbytes
            total[3] += growths
        result: list[dict[str, Any]] = [
            {
                "file": file,
                "line": line,
                "function": function,
                "allocations": round(t[1]),
                "bytes": round(t[2]),
                "growths": round(t[3]),
                "samples": int(t[0]),
            }
            for (file, line, function), t in merged.items()
        ]
        result.sort(key=lambda row: (-row["bytes"], row["file"], row["line"]))
        return result

    def snapshot(self) -> HeapSnapshot:
        """The live blocks now (while running) or at stop (after): an aether_perf HeapSnapshot.

        After a stop that ran out of memory (``capture_error``), the capture is retried; if it
        fails again the snapshot holds no blocks, only the exact totals and the memory series,
        and ``meta.extra["incomplete"]`` says so."""
        session = self._require_session("snapshot")
        try:
            session.capture()  # a no-op unless the capture at stop failed
            frames, stacks, columns = self.raw_snapshot()
            stats = session.stats()
            return self._build(frames, stacks, columns, stats, series=self.memory_series())
        except MemoryError:
            if session.running:
                raise
        import numpy as np

        self.capture_error = self.capture_error or "MemoryError"
        empty = np.zeros(0, dtype=np.int64)
        columns = dict.fromkeys(("stack", "size", "bytes", "count", "tid", "time_ns"), empty)
        snap = self._build([], [], columns, session.stats(), series=self._series)
        snap.meta.extra["incomplete"] = "out of memory while reading the live blocks: totals and series only"
        return snap

    def _build(
        self,
        frames: list[tuple[str, str, int, int]],
        stacks: list[tuple[int, ...]],
        columns: dict[str, Any],
        stats: dict[str, int],
        series: MemorySeries | None,
    ) -> HeapSnapshot:
        from aether_perf.model.frame import Frame
        from aether_perf.model.heap import HeapSnapshot

        meta = self._meta(stats)
        # Per-line allocation totals (freed blocks included) for annotate and diagnose; a capture
        # that ran out of memory at stop has none (only the totals and the series survive).
        if frames or not self.capture_error:
            meta.extra["sites"] = self.sites()
        return HeapSnapshot(
            [Frame(function=q, file=f, line=line, first_line=first) for q, f, line, first in frames],
            stacks,
            meta=meta,
            series=series,
            **columns,
        )

    def _thread_rows(self) -> dict[int, dict[str, int]]:
        return self._session.threads() if self._session is not None else {}

    def _meta(self, stats: dict[str, int]) -> HeapMeta:
        from aether_perf.model.heap import HeapMeta

        end_ns = stats["stop_ns"] or _core.clock_ns()
        meta = HeapMeta(
            mode=self.mode,
            sample_rate=self.sample_rate,
            start_time=self._start_time,
            duration=max(0, end_ns - stats["start_ns"]) / 1e9,
            python_version=platform.python_version(),
            native=self.native,
            allocated_bytes=stats["allocated_bytes"],
            freed_bytes=stats["freed_bytes"],
            allocations=stats["allocations"],
            frees=stats["frees"],
            peak_bytes=stats["peak_bytes"],
            current_bytes=stats["current_bytes"],
            extra={
                k: stats[k]
                for k in (
                    "live_blocks",
                    "sampled_allocations",
                    "stacks",
                    "unattributed",
                    "untracked",
                    "foreign_frees",
                    "threads",
                )
            },
        )
        # JSON object keys are strings: thread ids as text.
        meta.extra["thread_totals"] = {str(tid): row for tid, row in self._thread_rows().items()}
        return meta


def _after_fork_in_child() -> None:
    """A forked child inherits the tracker mid-run: the C core already stopped recording at fork
    (pthread_atfork); here the inherited hooks come off and the child may start its own tracker.
    The parent's tracker object in the child keeps the totals as they were at fork."""
    global _active
    _lock._at_fork_reinit()  # type: ignore[attr-defined]
    tracker, _active = _active, None
    if tracker is not None:
        tracker._poller = None  # threads do not survive fork
        if tracker._session is not None:
            tracker._session.after_fork_child()


os.register_at_fork(after_in_child=_after_fork_in_child)
