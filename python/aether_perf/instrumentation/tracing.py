"""Traces: while one is active, every instrumented call also records a :class:`Span`.

A span has the thread's native id, its start and end on ``time.monotonic_ns()`` (the clock a
profile's ``meta.extra["start_monotonic_ns"]`` is on, so spans line up with samples), its track and
its depth on that track. The track is ``"thread <tid>"`` for code running outside asyncio tasks;
inside a task it is the task's name (made unique within the trace with a ``" #2"``, ``" #3"``...
suffix when two tasks share a name), so spans follow tasks, not threads: two tasks interleaving
their awaits on one thread get a track each, and on every track the spans nest properly (each task
runs its code sequentially, and instrumented regions are lexically nested).

The position on the track (track, depth) lives in a ``ContextVar``: every asyncio task runs in its
own copy of the context and every thread in its own context, so nesting follows tasks and threads
without any lookup table on the hot path. The value also names its owner (the task, or the thread
ident) and the trace buffer's generation, so a context inherited by a new task, or left over from
an earlier trace, is recognised and replaced rather than trusted.

Spans are kept as tuples while the trace runs (cheaper than building dataclasses on the hot path)
and become :class:`Span` objects when asked for. A trace holds the spans that started and ended
while it was active. Traces may nest (an inner ``trace()`` sees the spans of its own lifetime and
the outer one sees all); ``max_spans`` bounds the memory of a forgotten trace, spans beyond it are
counted in ``dropped``.
"""

from __future__ import annotations

import itertools
import threading
import time
import weakref
from contextvars import ContextVar
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeAlias

from aether_perf.errors import InvalidArgument

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable

    from aether_perf.fileio import PathOrText
    from aether_perf.model.profile import Profile
    from aether_perf.model.span import Span

__all__ = [
    "DEFAULT_MAX_SPANS",
    "STATE",
    "SpanBuffer",
    "Trace",
    "active_trace",
    "begin_span",
    "position",
    "start_trace",
    "stop_trace",
    "trace",
]

#: Spans a trace keeps at most unless told otherwise (about 150 MB of tuples).
DEFAULT_MAX_SPANS = 1_000_000

#: A recorded span: (name, category, tid, track, depth, start_ns, end_ns).
SpanRecord: TypeAlias = tuple[str, str, int, str, int, int, int]
#: Where the running code is: (buffer generation, owner, tid, track, depth of the next span).
#: The generation, not the buffer: a context keeps its last position after the trace ends, and
#: must not keep the trace's spans alive with it.
Position: TypeAlias = tuple[int, object, int, str, int]

_now = time.monotonic_ns
_get_ident = threading.get_ident
_get_native_id = threading.get_native_id
_generations = itertools.count(1)


class SpanBuffer:
    """Where spans go while at least one trace is active (shared by nested traces).

    The hot paths append to ``records`` while it holds fewer than ``max_spans`` and count the
    others in ``dropped`` (without a lock: under contention a few more may be kept, and the
    count is approximate; it only tells that spans were lost).
    """

    __slots__ = (
        "__weakref__",
        "_lock",
        "_names",
        "_task_tracks",
        "dropped",
        "generation",
        "max_spans",
        "records",
    )

    def __init__(self, max_spans: int) -> None:
        self.generation = next(_generations)
        self.records: list[SpanRecord] = []
        self.max_spans = max_spans
        self.dropped = 0
        self._lock = threading.Lock()
        self._task_tracks: weakref.WeakKeyDictionary[asyncio.Task[Any], str] = weakref.WeakKeyDictionary()
        self._names: set[str] = set()

    def new_position(self, owner: object, task: asyncio.Task[Any] | None) -> Position:
        """The position at depth 0 of the track of ``task`` (or of the calling thread)."""
        tid = _get_native_id()
        if task is None:
            return (self.generation, owner, tid, f"thread {tid}", 0)
        with self._lock:
            track = self._task_tracks.get(task)
            if track is None:
                base = task.get_name()
                track, n = base, 1
                while track in self._names:
                    n += 1
                    track = f"{base} #{n}"
                self._names.add(track)
                self._task_tracks[task] = track
        return (self.generation, owner, tid, track, 0)


class _State:
    __slots__ = ("buffer",)

    def __init__(self) -> None:
        self.buffer: SpanBuffer | None = None


#: ``STATE.buffer`` is the buffer of the active trace(s), None when no trace is active: the one
#: thing the instrumentation hot path reads to choose between recording spans or not.
STATE = _State()
_traces: list[Trace] = []  # the active traces, oldest first
_traces_lock = threading.Lock()

position: ContextVar[Position | None] = ContextVar("aether_perf_span_position", default=None)


def _no_running_loop() -> None:
    return None


# Bound to asyncio's when the first trace starts (importing asyncio costs ~20 ms, which a program
# that only counts calls should not pay); until then no span is ever begun.
_get_running_loop: Callable[[], asyncio.AbstractEventLoop | None] = _no_running_loop
_current_task: Callable[[asyncio.AbstractEventLoop | None], asyncio.Task[Any] | None]


def _bind_asyncio() -> None:
    global _get_running_loop, _current_task
    import asyncio

    _current_task = asyncio.current_task
    _get_running_loop = asyncio._get_running_loop


def begin_span(buffer: SpanBuffer) -> Position:
    """Enter a span: returns the position of the span (tid, track, its depth) and moves the
    context's position one level deeper. The caller sets ``position`` back to the returned value
    when the span ends (whatever the context held before, so the track stays known)."""
    loop = _get_running_loop()
    task = _current_task(loop) if loop is not None else None
    owner: object = task if task is not None else _get_ident()
    here = position.get()
    if here is None or here[0] != buffer.generation or here[1] != owner:
        here = buffer.new_position(owner, task)
    position.set((here[0], owner, here[2], here[3], here[4] + 1))
    return here


class Trace:
    """A span recording session: ``with trace() as t: ...`` then ``t.spans``.

    ``start_ns`` and ``end_ns`` are ``time.monotonic_ns()`` values (``end_ns`` is None while the
    trace runs). ``spans`` is the list of :class:`Span` recorded so far (all of them once stopped),
    ordered by start time, outer spans before the spans they contain. ``dropped`` counts the spans
    lost to ``max_spans``.
    """

    def __init__(self, *, max_spans: int = DEFAULT_MAX_SPANS) -> None:
        if isinstance(max_spans, bool) or not isinstance(max_spans, int) or max_spans < 1:
            raise InvalidArgument(f"max_spans must be a positive integer, got {max_spans!r}")
        self.max_spans = max_spans
        self.start_ns: int | None = None
        self.end_ns: int | None = None
        self._buffer: SpanBuffer | None = None
        self._first = 0
        self._dropped_at_start = 0
        self._records: list[SpanRecord] | None = None
        self._dropped = 0
        self._spans: list[Span] | None = None

    # -- life cycle ------------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self._buffer is not None

    def start(self) -> Trace:
        """Start recording; InvalidArgument if this trace was started before."""
        with _traces_lock:
            if self.start_ns is not None:
                raise InvalidArgument("this trace was already started; make a new trace() to record again")
            if _get_running_loop is _no_running_loop:
                _bind_asyncio()
            buffer = STATE.buffer
            if buffer is None:
                buffer = SpanBuffer(self.max_spans)
            else:
                buffer.max_spans = max(buffer.max_spans, len(buffer.records) + self.max_spans)
            self._buffer = buffer
            self._first = len(buffer.records)
            self._dropped_at_start = buffer.dropped
            self.start_ns = _now()
            _traces.append(self)
            STATE.buffer = buffer
        return self

    def stop(self) -> Trace:
        """Stop recording (stopping a stopped trace does nothing); InvalidArgument if never started."""
        with _traces_lock:
            if self._records is not None:
                return self
            buffer = self._buffer
            if buffer is None:
                raise InvalidArgument("this trace was never started")
            self.end_ns = _now()
            start = self.start_ns
            assert start is not None
            taken = buffer.records[self._first :]
            self._records = [r for r in taken if r[5] >= start][: self.max_spans]
            self._dropped = buffer.dropped - self._dropped_at_start
            self._buffer = None  # the buffer may live on (an outer trace); this trace is done with it
            _traces.remove(self)
            if not _traces:
                STATE.buffer = None
        return self

    def __enter__(self) -> Trace:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- results ---------------------------------------------------------------------------------

    @property
    def dropped(self) -> int:
        if self._buffer is not None:
            return self._buffer.dropped - self._dropped_at_start
        return self._dropped

    @property
    def spans(self) -> list[Span]:
        if self._records is not None:
            if self._spans is None:
                self._spans = _to_spans(self._records)
                self._records = []  # the spans replace the tuples (only the stopped mark stays)
            return list(self._spans)
        if self._buffer is None:
            return []
        start = self.start_ns
        assert start is not None
        return _to_spans([r for r in self._buffer.records[self._first :] if r[5] >= start])

    def write_chrome_trace(
        self, file: PathOrText, *, profile: Profile | None = None, name: str | None = None
    ) -> None:
        """Write the spans (and ``profile``'s samples, when given) as a Chrome trace
        (see :func:`aether_perf.export.chrome_trace.write`)."""
        from aether_perf.export import chrome_trace

        chrome_trace.write(file, profile=profile, spans=self.spans, name=name)

    def __repr__(self) -> str:
        state = "active" if self.active else ("stopped" if self._records is not None else "not started")
        count = len(self._spans) if self._spans is not None else len(self._records or ())
        return f"<Trace {state} spans={count}>"


def _to_spans(records: list[SpanRecord]) -> list[Span]:
    # Imported here: aether_perf.model loads numpy, which the instrumented program may not want.
    from aether_perf.model.span import Span

    spans = [
        Span(name=name, tid=tid, start_ns=start, end_ns=end, depth=depth, track=track, category=category)
        for name, category, tid, track, depth, start, end in records
    ]
    spans.sort(key=lambda s: (s.start_ns, -s.end_ns, s.depth))
    return spans


def trace(*, max_spans: int = DEFAULT_MAX_SPANS) -> Trace:
    """A trace to use as ``with trace() as t:``; it records from ``__enter__`` to ``__exit__``."""
    return Trace(max_spans=max_spans)


def start_trace(*, max_spans: int = DEFAULT_MAX_SPANS) -> Trace:
    """Start a trace and return it; :func:`stop_trace` (or its ``stop()``) ends it."""
    return Trace(max_spans=max_spans).start()


def stop_trace() -> Trace:
    """Stop the most recently started active trace and return it; InvalidArgument if none is active."""
    with _traces_lock:
        if not _traces:
            raise InvalidArgument("no trace is active (start one with start_trace() or trace())")
        latest = _traces[-1]
    return latest.stop()


def active_trace() -> Trace | None:
    """The most recently started trace still active, or None."""
    with _traces_lock:
        return _traces[-1] if _traces else None
