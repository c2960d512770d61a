"""Per-lock counters (updated by the instrumented locks) and the per-site summaries read from them.

Every instrumented lock owns one :class:`LockCounters`. A plain lock updates its counters only
while it holds itself, so the counters need no lock of their own; a semaphore (several holders)
takes a small private lock for its updates. :class:`LockRegistry` keeps the counters of every lock
created under it and :meth:`LockRegistry.stats` merges them by name (the creation site, or the name
given) into :class:`LockStats`, sorted by contention (total wait, most first).
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from aether_perf.model.finding import Location

__all__ = ["LockCounters", "LockRegistry", "LockStats", "WaitRecord", "capture_stack"]

#: How many of the longest waits each lock keeps, with their stacks.
KEEP_WAITS = 5
#: Frames kept per waiting stack (innermost first).
STACK_DEPTH = 16

_OWN_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_allocate = threading._allocate_lock  # type: ignore[attr-defined]  # the real, uninstrumented lock


def capture_stack(frame: FrameType | None, depth: int = STACK_DEPTH) -> tuple[Location, ...]:
    """``frame`` and its callers as Locations, innermost first, at most ``depth`` of them."""
    while frame is not None and frame.f_code.co_filename.startswith(_OWN_DIR):
        frame = frame.f_back  # our wrappers are not the waiter
    out: list[Location] = []
    while frame is not None and len(out) < depth:
        code = frame.f_code
        out.append(Location(code.co_filename, frame.f_lineno or 0, code.co_qualname))
        frame = frame.f_back
    return tuple(out)


@dataclass(frozen=True, slots=True)
class WaitRecord:
    """One long wait: how long (ns), on which thread, and the waiting stack (innermost first)."""

    wait_ns: int
    thread: str
    stack: tuple[Location, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "wait_ns": self.wait_ns,
            "thread": self.thread,
            "stack": [[loc.file, loc.line, loc.function] for loc in self.stack],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WaitRecord:
        stack = tuple(Location(str(f), int(line), str(fn)) for f, line, fn in data.get("stack", ()))
        return cls(int(data["wait_ns"]), str(data.get("thread", "")), stack)


class LockCounters:
    """The raw counters of one lock (all times in nanoseconds)."""

    __slots__ = (
        "acquisitions",
        "contended",
        "failed",
        "hold_max_ns",
        "hold_total_ns",
        "holds",
        "kind",
        "longest",
        "name",
        "site",
        "wait_max_ns",
        "wait_total_ns",
    )

    def __init__(self, name: str, kind: str, site: Location | None) -> None:
        self.name = name
        self.kind = kind
        self.site = site
        self.acquisitions = 0
        self.contended = 0
        self.failed = 0  # non-blocking attempts that found it taken, and timeouts
        self.wait_total_ns = 0
        self.wait_max_ns = 0
        self.holds = 0
        self.hold_total_ns = 0
        self.hold_max_ns = 0
        self.longest: list[WaitRecord] = []

    def waited(self, wait_ns: int, frame: FrameType | None) -> None:
        """Count a contended acquisition that waited ``wait_ns``; keep its stack if among the longest."""
        self.contended += 1
        self.wait_total_ns += wait_ns
        if wait_ns > self.wait_max_ns:
            self.wait_max_ns = wait_ns
        longest = self.longest
        if len(longest) < KEEP_WAITS or wait_ns > longest[-1].wait_ns:
            record = WaitRecord(wait_ns, threading.current_thread().name, capture_stack(frame))
            longest.append(record)
            longest.sort(key=lambda r: -r.wait_ns)
            del longest[KEEP_WAITS:]

    def held(self, hold_ns: int) -> None:
        self.holds += 1
        self.hold_total_ns += hold_ns
        if hold_ns > self.hold_max_ns:
            self.hold_max_ns = hold_ns


@dataclass(frozen=True, slots=True)
class LockStats:
    """What happened to the locks of one name (creation site or given name), times in nanoseconds.

    ``avg_wait_ns`` is the total wait over *all* acquisitions (the chapter's measure), so a lock
    that is rarely contended has a small average even if one wait was long (see ``wait_max_ns``).
    """

    name: str
    kind: str
    locks: int
    acquisitions: int
    contended: int
    failed: int
    wait_total_ns: int
    wait_max_ns: int
    holds: int
    hold_total_ns: int
    hold_max_ns: int
    site: Location | None = None
    longest_waits: tuple[WaitRecord, ...] = field(default_factory=tuple)

    @property
    def avg_wait_ns(self) -> float:
        return self.wait_total_ns / self.acquisitions if self.acquisitions else 0.0

    @property
    def avg_hold_ns(self) -> float:
        return self.hold_total_ns / self.holds if self.holds else 0.0

    @property
    def contention_ratio(self) -> float:
        """The share of acquisitions that had to wait."""
        return self.contended / self.acquisitions if self.acquisitions else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "locks": self.locks,
            "acquisitions": self.acquisitions,
            "contended": self.contended,
            "failed": self.failed,
            "wait_total_ns": self.wait_total_ns,
            "wait_max_ns": self.wait_max_ns,
            "holds": self.holds,
            "hold_total_ns": self.hold_total_ns,
            "hold_max_ns": self.hold_max_ns,
            "site": [self.site.file, self.site.line, self.site.function] if self.site else None,
            "longest_waits": [w.to_dict() for w in self.longest_waits],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LockStats:
        site = data.get("site")
        return cls(
            name=str(data["name"]),
            kind=str(data["kind"]),
            locks=int(data["locks"]),
            acquisitions=int(data["acquisitions"]),
            contended=int(data["contended"]),
            failed=int(data.get("failed", 0)),
            wait_total_ns=int(data["wait_total_ns"]),
            wait_max_ns=int(data["wait_max_ns"]),
            holds=int(data.get("holds", 0)),
            hold_total_ns=int(data.get("hold_total_ns", 0)),
            hold_max_ns=int(data.get("hold_max_ns", 0)),
            site=Location(str(site[0]), int(site[1]), str(site[2])) if site else None,
            longest_waits=tuple(WaitRecord.from_dict(w) for w in data.get("longest_waits", ())),
        )


def _merge(name: str, group: list[LockCounters]) -> LockStats:
    waits = sorted((w for c in group for w in list(c.longest)), key=lambda r: -r.wait_ns)[:KEEP_WAITS]
    return LockStats(
        name=name,
        kind=group[0].kind,
        locks=len(group),
        acquisitions=sum(c.acquisitions for c in group),
        contended=sum(c.contended for c in group),
        failed=sum(c.failed for c in group),
        wait_total_ns=sum(c.wait_total_ns for c in group),
        wait_max_ns=max(c.wait_max_ns for c in group),
        holds=sum(c.holds for c in group),
        hold_total_ns=sum(c.hold_total_ns for c in group),
        hold_max_ns=max(c.hold_max_ns for c in group),
        site=group[0].site,
        longest_waits=tuple(waits),
    )


class LockRegistry:
    """The counters of every lock created under this registry.

    One counters object per lock is kept for the registry's lifetime (a few hundred bytes), so
    the numbers of a lock that was garbage-collected still count.
    """

    def __init__(self) -> None:
        self._guard = _allocate()
        self._counters: list[LockCounters] = []

    def register(self, counters: LockCounters) -> None:
        with self._guard:
            self._counters.append(counters)

    def clear(self) -> None:
        with self._guard:
            self._counters.clear()

    def stats(self) -> list[LockStats]:
        """One LockStats per name, most total wait first (then most contended, then name)."""
        with self._guard:
            counters = list(self._counters)
        groups: dict[tuple[str, str], list[LockCounters]] = {}
        for c in counters:
            groups.setdefault((c.name, c.kind), []).append(c)
        merged = [_merge(name, group) for (name, _), group in groups.items()]
        merged.sort(key=lambda s: (-s.wait_total_ns, -s.contended, -s.acquisitions, s.name))
        return merged


#: Locks made without an explicit registry and outside :func:`aether_perf.locks.track` land here.
DEFAULT_REGISTRY = LockRegistry()


def creation_site(depth: int, skip_files: frozenset[str]) -> Location | None:
    """The first caller frame (from ``depth`` up) outside ``skip_files``: where the lock was made."""
    try:
        frame: FrameType | None = sys._getframe(depth)
    except ValueError:
        return None
    while frame is not None and frame.f_code.co_filename in skip_files:
        frame = frame.f_back
    if frame is None:
        return None
    return Location(frame.f_code.co_filename, frame.f_lineno or 0, frame.f_code.co_qualname)
