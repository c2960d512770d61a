"""Instrumentation spans as rows under the page's timeline.

Span times are CLOCK_MONOTONIC nanoseconds; a profile's ``meta.extra["start_monotonic_ns"]`` is
its time zero, so a span is drawn at ``start_ns - start_monotonic_ns`` on the samples' time axis.
A profile without that origin cannot be lined up with spans: they are then drawn from the first
span's start and the page says they are not aligned. Only the :data:`MAX_SPANS` longest spans that
overlap the profile's time are shipped; the page says how many were left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aether_perf.errors import InvalidArgument
from aether_perf.model.profile import Profile
from aether_perf.model.span import Span

__all__ = ["MAX_SPANS", "build_span_track"]

MAX_SPANS = 10_000


def _track_name(span: Span, profile: Profile) -> str:
    if span.track:
        return span.track
    info = profile.threads.get(span.tid)
    return f"{info.name} ({span.tid})" if info is not None else f"thread {span.tid}"


def build_span_track(profile: Profile, spans: Sequence[Span], span_ns: int) -> dict[str, Any]:
    """The JSON-ready span track: ``tracks`` (names), ``names``, ``spans`` as ``[track, depth,
    start, end, name]`` rows (times relative to the profile's zero, name an index into ``names``),
    ``aligned``, ``total`` (spans given) and ``outside`` (spans not overlapping the profile)."""
    for index, span in enumerate(spans):
        if not isinstance(span, Span):
            raise InvalidArgument(f"spans[{index}] must be a Span, got {type(span).__name__}")
    origin = profile.meta.extra.get("start_monotonic_ns")
    if isinstance(origin, int) and not isinstance(origin, bool):
        zero, aligned = origin, True
    else:
        zero, aligned = min((s.start_ns for s in spans), default=0), False
    inside = [s for s in spans if s.end_ns - zero >= 0 and s.start_ns - zero < span_ns]
    inside.sort(key=lambda s: -(s.end_ns - s.start_ns))
    shown = sorted(inside[:MAX_SPANS], key=lambda s: (s.start_ns, s.depth))
    tracks: dict[str, int] = {}
    names: dict[str, int] = {}
    for span in sorted(shown, key=lambda s: (_track_name(s, profile), s.start_ns)):
        tracks.setdefault(_track_name(span, profile), len(tracks))
    rows = []
    for span in shown:
        name = names.setdefault(span.name, len(names))
        rows.append(
            [tracks[_track_name(span, profile)], span.depth, span.start_ns - zero, span.end_ns - zero, name]
        )
    return {
        "aligned": aligned,
        "tracks": list(tracks),
        "names": list(names),
        "spans": rows,
        "total": len(spans),
        "outside": len(spans) - len(inside),
    }
