"""Chrome Trace Event Format JSON (the timeline format of chrome://tracing and Perfetto).

:func:`write` puts spans (from :mod:`aether_perf.instrumentation` traces) and a sampled
:class:`Profile` on one timeline. The file is the object form::

    {"traceEvents": [...], "displayTimeUnit": "ms", "otherData": {...}}

with these events:

- ``ph: "M"`` metadata: ``process_name`` for the process, and ``thread_name`` and
  ``thread_sort_index`` for every track (``tid``) the file uses;
- ``ph: "X"`` complete events, ``ts`` and ``dur`` in microseconds as floats (nanosecond
  precision: ``round(ts * 1000)`` gives the nanosecond back), ``pid``, ``tid``, ``name``, ``cat``
  and ``args``.

**Spans** become one X event each, ``cat`` the span's category (``"span"`` if it has none) and
``args`` ``{"track", "tid", "depth"}`` (what :func:`read_spans` needs to rebuild the spans). A span
on its thread's track (``track`` empty or ``"thread <tid>"``) goes on that thread's ``tid``; a span
on an asyncio task's track goes on a track of its own, a synthetic ``tid`` (from
``SYNTHETIC_TID_BASE`` up, far above any Linux thread id) named after the task.

**A profile** becomes a flame chart per thread (``cat`` ``"sample"``): each sample covers
``[time_ns - weight_ns, time_ns]`` (clipped so that it starts no earlier than the thread's previous
sample ended, nor before the profile's start), and a frame that stays on the stack over consecutive
samples of the thread becomes one X event from the start of the first of them to the end of the
last. A frame is the same frame across samples when it runs the same function
(``(function, file, first_line)``) at the same level under the same callers; ``args`` hold its
``file`` and ``first_line``. The events of one thread therefore nest exactly like the stacks.
When a thread has both samples and spans, the samples keep the thread's ``tid`` and the spans get
a synthetic track named ``"<thread name> spans"`` beside it (sampled frames and instrumented
regions do not nest in each other, and one track must not hold overlapping events).

**One time axis**: spans carry ``time.monotonic_ns()`` instants and a profile's ``time_ns`` counts
from ``meta.extra["start_monotonic_ns"]`` on the same clock, so both are placed on it; ``ts`` 0 is
the earliest of the profile's start and the first span (``otherData.origin_monotonic_ns``). A
profile without ``start_monotonic_ns`` can be written alone (its ``ts`` count from its start) but
not together with spans.

Events are sorted by ``ts``, and among events starting together the longer (outer) one first:
Perfetto keeps the file order of equal timestamps, so parents come before their children.
Perfetto rejects overlapping (non-nested) events on one track; the nesting rule above guarantees
there are none. ``displayTimeUnit`` is ``"ms"`` (the format's default) and written after the events
with a space after the colon: Perfetto releases before 2022 took a ``"displayTimeUnit":"ns"`` found
near the start of the file as the unit of ``ts`` (google/perfetto issues #141 and #274).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from aether_perf.errors import InvalidArgument
from aether_perf.export.textinput import read_json
from aether_perf.fileio import PathOrText, describe, open_text_output
from aether_perf.model.fileformat import format_error
from aether_perf.model.span import Span

if TYPE_CHECKING:
    from aether_perf.model.profile import Profile

__all__ = [
    "SAMPLE_CATEGORY",
    "SPAN_CATEGORY",
    "SYNTHETIC_TID_BASE",
    "read",
    "read_spans",
    "to_json",
    "write",
]

#: The first synthetic tid (asyncio task tracks, span tracks beside sampled threads).
SYNTHETIC_TID_BASE = 1 << 30
#: ``cat`` of the flame-chart events made from a profile's samples.
SAMPLE_CATEGORY = "sample"
#: ``cat`` of a span without a category.
SPAN_CATEGORY = "span"
_DISPLAY_TIME_UNIT = "ms"


#: An X event before JSON: (start ns, start - end, level, output tid, kind, ref), absolute ns;
#: ``kind`` is _SAMPLE (``ref`` a frame index) or _SPAN (``ref`` an index into the span list).
#: Sorting these tuples gives the file order: by start, the longer (outer) event first.
_Event: TypeAlias = tuple[int, int, int, int, int, int]
_SAMPLE, _SPAN = 0, 1


@dataclass
class _Track:
    tid: int
    name: str
    sort_key: tuple[int, int, int, int, str]


def _thread_track(span: Span) -> bool:
    return span.track in ("", f"thread {span.tid}")


def _exporter() -> str:
    from aether_perf.export.speedscope import exporter_id

    return exporter_id()


# -- profile samples -> flame chart ----------------------------------------------------------------


def _sample_events(profile: Profile, offset: int) -> list[_Event]:
    """The flame-chart events of every thread, in absolute ns (profile time + ``offset``)."""
    import numpy as np

    key_ids: dict[tuple[str, str, int], int] = {}
    frame_key = [key_ids.setdefault(frame.function_key, len(key_ids)) for frame in profile.frames]
    stack_keys = [tuple(frame_key[f] for f in stack) for stack in profile.stacks]
    stacks = profile.stacks
    events: list[_Event] = []
    order = np.lexsort((profile.time_ns, profile.tid))
    tids = profile.tid[order].tolist()
    times = profile.time_ns[order].tolist()
    weights = profile.weight_ns[order].tolist()
    stack_ids = profile.stack[order].tolist()

    # The frames open on the current thread, root first: function key, start, frame index.
    open_keys: list[int] = []
    open_starts: list[int] = []
    open_frames: list[int] = []

    def close(tid: int, keep: int, end: int) -> None:
        while len(open_keys) > keep:
            level = len(open_keys) - 1
            open_keys.pop()
            start = open_starts.pop() + offset
            events.append((start, start - end - offset, level, tid, _SAMPLE, open_frames.pop()))

    current_tid = -1
    previous_end = 0
    previous_stack = -1
    for tid, time, weight, stack_id in zip(tids, times, weights, stack_ids, strict=True):
        if tid != current_tid:
            close(current_tid, 0, previous_end)
            current_tid, previous_end, previous_stack = tid, 0, -1
        if stack_id != previous_stack:
            start = max(time - weight, previous_end, 0)
            keys = stack_keys[stack_id]
            common = 0
            limit = min(len(keys), len(open_keys))
            while common < limit and keys[common] == open_keys[common]:
                common += 1
            close(tid, common, previous_end)
            stack = stacks[stack_id]
            for level in range(common, len(keys)):
                open_keys.append(keys[level])
                open_starts.append(start)
                open_frames.append(stack[level])
            previous_stack = stack_id
        if time > previous_end:
            previous_end = time
    close(current_tid, 0, previous_end)
    return events


# -- the document ------------------------------------------------------------------------------------


def _check_spans(spans: Iterable[Span]) -> list[Span]:
    result = list(spans)
    for index, span in enumerate(result):
        if not isinstance(span, Span):
            raise InvalidArgument(f"spans[{index}] must be a Span, got {type(span).__name__}")
        if span.end_ns < span.start_ns:
            raise InvalidArgument(f"spans[{index}] ({span.name!r}) ends before it starts")
    return result


def _profile_offset(profile: Profile, with_spans: bool) -> int:
    start = profile.meta.extra.get("start_monotonic_ns")
    if isinstance(start, int) and not isinstance(start, bool):
        return start
    if with_spans:
        raise InvalidArgument(
            "the profile has no meta.extra['start_monotonic_ns'], so its samples cannot be placed "
            "on the spans' time axis; write them to separate files"
        )
    return 0


def _tracks(
    profile: Profile | None, spans: Sequence[Span], pid: int
) -> tuple[list[_Track], dict[tuple[int, str], int]]:
    """The tracks of the file in display order, and the output tid of each span track
    ``(tid, track)`` (``track`` is "" for a thread's own track).

    Order: the profile's threads (main thread first), then threads with spans only (the main
    thread, whose tid is the pid, first); each thread's sampled track, then its span track, then
    the tracks of the asyncio tasks that ran on it, in the order they started.
    """
    sampled: dict[int, str] = {}
    thread_rank: dict[int, tuple[int, int]] = {}
    if profile is not None:
        from aether_perf.analysis.threads import thread_order

        for rank, tid in enumerate(thread_order(profile)):
            sampled[tid] = profile.threads[tid].name
            thread_rank[tid] = (0, rank)
    first_start: dict[tuple[int, str], int] = {}
    for span in spans:
        key = (span.tid, "" if _thread_track(span) else span.track)
        if key not in first_start or span.start_ns < first_start[key]:
            first_start[key] = span.start_ns
        if span.tid not in thread_rank:
            thread_rank[span.tid] = (1, -1 if span.tid == pid else span.tid)
    tracks = [_Track(tid, name, (*thread_rank[tid], 0, 0, "")) for tid, name in sampled.items()]
    span_tid: dict[tuple[int, str], int] = {}
    next_synthetic = SYNTHETIC_TID_BASE
    for key in sorted(first_start, key=lambda k: (thread_rank[k[0]], k[1] != "", first_start[k], k[1])):
        tid, track = key
        if track == "" and tid not in sampled:
            span_tid[key] = tid
            tracks.append(_Track(tid, f"thread {tid}", (*thread_rank[tid], 0, 0, "")))
            continue
        span_tid[key] = next_synthetic
        if track == "":
            name, order = f"{sampled[tid]} spans", 1
        else:
            name, order = track, 2
        tracks.append(_Track(next_synthetic, name, (*thread_rank[tid], order, first_start[key], track)))
        next_synthetic += 1
    tracks.sort(key=lambda t: t.sort_key)
    return tracks, span_tid


def _us(ns: int) -> float:
    return ns / 1000.0


def _process_name(profile: Profile | None, name: str | None) -> str:
    if name is not None:
        return name
    if profile is not None and profile.meta.program:
        return profile.meta.program
    return "python"


def _pid(profile: Profile | None, pid: int | None) -> int:
    if pid is not None:
        if isinstance(pid, bool) or not isinstance(pid, int):
            raise InvalidArgument(f"pid must be an integer, got {pid!r}")
        return pid
    if profile is not None:
        recorded = profile.meta.extra.get("pid")
        if isinstance(recorded, int) and not isinstance(recorded, bool):
            return recorded
    return os.getpid()


class _Document:
    """Everything :func:`to_json` and :func:`write` put in the file, before JSON."""

    def __init__(
        self, profile: Profile | None, spans: Iterable[Span] | None, name: str | None, pid: int | None
    ) -> None:
        if profile is None and spans is None:
            raise InvalidArgument("give a profile, spans, or both to make a Chrome trace of")
        self.profile = profile
        self.spans = _check_spans(spans) if spans is not None else []
        self.pid = _pid(profile, pid)
        offset = _profile_offset(profile, bool(self.spans)) if profile is not None else 0
        self.tracks, span_tid = _tracks(profile, self.spans, self.pid)
        events = _sample_events(profile, offset) if profile is not None else []
        for index, span in enumerate(self.spans):
            key = (span.tid, "" if _thread_track(span) else span.track)
            start = span.start_ns
            events.append((start, start - span.end_ns, span.depth, span_tid[key], _SPAN, index))
        events.sort()
        self.events = events
        candidates = [events[0][0]] if events else []
        if profile is not None:
            candidates.append(offset)
        self.origin = min(candidates) if candidates else 0
        other: dict[str, Any] = {
            "exporter": _exporter(),
            "clock": "CLOCK_MONOTONIC" if offset or self.spans else "profile",
            "origin_monotonic_ns": self.origin,
        }
        if profile is not None:
            meta = profile.meta
            other.update(
                {
                    "mode": meta.mode,
                    "interval": meta.interval,
                    "start_time": meta.start_time,
                    "duration": meta.duration,
                    "python_version": meta.python_version,
                    "program": meta.program,
                }
            )
        self.other = other
        self.process_name = _process_name(profile, name)

    def metadata(self) -> list[dict[str, Any]]:
        pid = self.pid
        result: list[dict[str, Any]] = [
            {"name": "process_name", "ph": "M", "pid": pid, "tid": 0, "args": {"name": self.process_name}}
        ]
        for index, track in enumerate(self.tracks):
            result.append(
                {"name": "thread_name", "ph": "M", "pid": pid, "tid": track.tid, "args": {"name": track.name}}
            )
            result.append(
                {
                    "name": "thread_sort_index",
                    "ph": "M",
                    "pid": pid,
                    "tid": track.tid,
                    "args": {"sort_index": index},
                }
            )
        return result

    def head_and_args(self, kind: int, ref: int) -> tuple[str, str, dict[str, Any]]:
        """The name, category and args of an event."""
        if kind == _SAMPLE:
            assert self.profile is not None
            frame = self.profile.frames[ref]
            return frame.function, SAMPLE_CATEGORY, {"file": frame.file, "first_line": frame.first_line}
        span = self.spans[ref]
        return (
            span.name,
            span.category or SPAN_CATEGORY,
            {"track": span.track, "tid": span.tid, "depth": span.depth},
        )

    def complete_events(self) -> list[dict[str, Any]]:
        origin, pid = self.origin, self.pid
        result = []
        for start, negative_duration, _, tid, kind, ref in self.events:
            name, category, args = self.head_and_args(kind, ref)
            result.append(
                {
                    "name": name,
                    "cat": category,
                    "ph": "X",
                    "ts": (start - origin) / 1000.0,
                    "dur": -negative_duration / 1000.0,
                    "pid": pid,
                    "tid": tid,
                    "args": args,
                }
            )
        return result

    def complete_event_lines(self) -> list[str]:
        """The X events as JSON text, the same as :meth:`complete_events` gives through
        ``_dumps`` but several times faster: each frame's and span's text is made once."""
        origin = self.origin
        pid = f'"pid":{self.pid},"tid":'
        cache: dict[tuple[int, int], tuple[str, str]] = {}
        lines = []
        for start, negative_duration, _, tid, kind, ref in self.events:
            parts = cache.get((kind, ref))
            if parts is None:
                name, category, args = self.head_and_args(kind, ref)
                parts = cache[(kind, ref)] = (
                    f'{{"name":{_dumps(name)},"cat":{_dumps(category)},"ph":"X","ts":',
                    f',"args":{_dumps(args)}}}',
                )
            ts = (start - origin) / 1000.0
            dur = -negative_duration / 1000.0
            lines.append(f'{parts[0]}{ts!r},"dur":{dur!r},{pid}{tid}{parts[1]}')
        return lines


def to_json(
    *,
    profile: Profile | None = None,
    spans: Iterable[Span] | None = None,
    name: str | None = None,
    pid: int | None = None,
) -> dict[str, Any]:
    """The trace document (what :func:`write` writes) as a JSON-ready dict."""
    document = _Document(profile, spans, name, pid)
    return {
        "traceEvents": document.metadata() + document.complete_events(),
        "displayTimeUnit": _DISPLAY_TIME_UNIT,
        "otherData": document.other,
    }


def _dumps(value: object) -> str:
    # ASCII: any stream encoding takes it, and lone surrogates (undecodable file names) travel as
    # \udcXX escapes instead of failing the write.
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False)


def write(
    file: PathOrText,
    *,
    profile: Profile | None = None,
    spans: Iterable[Span] | None = None,
    name: str | None = None,
    pid: int | None = None,
) -> None:
    """Write spans and/or a profile as Chrome Trace Event JSON (see the module doc) to a path
    (atomically) or an open text file. The text parses to what :func:`to_json` returns.

    ``name`` names the process (default: the profile's program, else ``"python"``); ``pid`` is the
    process id in the file (default: the profile's ``meta.extra["pid"]``, else this process's).
    InvalidArgument when neither is given, for a span that ends before it starts, or for spans
    with a profile that has no ``start_monotonic_ns``; nothing is written then.
    """
    document = _Document(profile, spans, name, pid)
    lines = [_dumps(event) for event in document.metadata()] + document.complete_event_lines()
    text = (
        '{"traceEvents":[\n' + ",\n".join(lines) + "\n],\n"
        f'"displayTimeUnit": {_dumps(_DISPLAY_TIME_UNIT)},\n'
        f'"otherData": {_dumps(document.other)}}}\n'
    )
    with open_text_output(file) as handle:
        handle.write(text)


# -- reading ---------------------------------------------------------------------------------------


def read(file: PathOrText) -> dict[str, Any]:
    """Read a Chrome trace (ours or another tool's) as ``{"traceEvents": [...], ...}``.

    A file in the bare-array form comes back as ``{"traceEvents": <the array>}``. Raises
    ProfileFormatError (one line, naming the file) for a file that is missing, not JSON, or not a
    trace (no event list, an event that is not an object or has no ``ph``).
    """
    label, data = read_json(file, "a Chrome trace")
    if isinstance(data, list):
        data = {"traceEvents": data}
    if not isinstance(data, dict) or not isinstance(data.get("traceEvents"), list):
        raise format_error(label, "not a Chrome trace: no traceEvents list")
    for index, event in enumerate(data["traceEvents"]):
        if not isinstance(event, dict) or not isinstance(event.get("ph"), str):
            raise format_error(label, f"not a Chrome trace: traceEvents[{index}] is not an event with a ph")
    return data


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def read_spans(file: PathOrText) -> list[Span]:
    """The spans of a trace :func:`write` wrote (its X events with a ``track`` argument), with
    their original tids, tracks, depths, and ``time.monotonic_ns()`` start and end."""
    data = read(file)
    other = data.get("otherData")
    origin = other.get("origin_monotonic_ns", 0) if isinstance(other, dict) else 0
    if not isinstance(origin, int) or isinstance(origin, bool):
        origin = 0
    spans = []
    for event in data["traceEvents"]:
        args = event.get("args")
        if event["ph"] != "X" or not isinstance(args, dict) or not isinstance(args.get("track"), str):
            continue
        ts, dur, tid, depth = event.get("ts"), event.get("dur"), args.get("tid"), args.get("depth", 0)
        if not (_number(ts) and _number(dur) and isinstance(tid, int) and isinstance(depth, int)):
            raise format_error(
                describe(file), f"span event {event.get('name')!r} has a malformed ts, dur or args"
            )
        start = origin + round(ts * 1000)
        category = event.get("cat", "")
        spans.append(
            Span(
                name=str(event.get("name", "")),
                tid=tid,
                start_ns=start,
                end_ns=start + round(dur * 1000),
                depth=depth,
                track=args["track"],
                category="" if category == SPAN_CATEGORY else str(category),
            )
        )
    spans.sort(key=lambda s: (s.start_ns, -s.end_ns, s.depth))
    return spans
