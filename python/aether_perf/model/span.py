"""Span: one timed region of a thread (or asyncio task), from instrumentation or tracing.

Times are ``time.monotonic_ns()`` (CLOCK_MONOTONIC), the clock sample times are taken on: a
profile's ``meta.extra["start_monotonic_ns"]`` is its time zero, so spans line up with samples.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Span"]


@dataclass(frozen=True, slots=True)
class Span:
    """``depth`` is the nesting level on its track (0 = outermost); ``track`` names the track the
    span belongs to: the thread's, or an asyncio task's when spans follow tasks."""

    name: str
    tid: int
    start_ns: int
    end_ns: int
    depth: int = 0
    track: str = ""
    category: str = ""

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns
