"""Line-level data: what each ``file:line`` cost in a Profile, and what it allocated in a HeapSnapshot.

The numbers an editor shows in the margin (time, CPU share, bytes allocated at a line), in the
shape Scalene and line_profiler use:

- **self** time is the weight of the samples whose innermost frame executes the line;
- **total** time is the weight of the samples with the line anywhere on the stack (counted once
  per sample even when recursion puts it there twice), so a loop header's total covers its body;
- **cpu** is the self weight of samples that were not idle (equal to self in cpu mode, the
  running part in wall mode);
- percentages are of the selected samples' total weight.

Allocations come from two places: ``HeapSnapshot.meta.extra["sites"]`` (what a line allocated
since tracking started, freed or not, and how often it grew a block by realloc: written by
``AllocationTracker.snapshot()``) and the snapshot's live rows (what a line still holds).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from aether_perf.analysis.selection import select_samples, stack_totals
from aether_perf.model.frame import FLAG_IDLE
from aether_perf.model.heap import HeapSnapshot
from aether_perf.model.profile import Profile

__all__ = ["LineAlloc", "LineKey", "LineStat", "heap_lines", "line_stats", "lines_by_file"]

#: ``(file, line)``
LineKey = tuple[str, int]


@dataclass(frozen=True)
class LineStat:
    """Time spent at one source line (nanoseconds of sample weight; percentages of the total)."""

    file: str
    line: int
    function: str
    self_ns: int
    total_ns: int
    cpu_ns: int
    self_samples: int
    total_samples: int
    self_pct: float
    total_pct: float
    cpu_pct: float


@dataclass(frozen=True)
class LineAlloc:
    """Allocations at one source line: since tracking started (``allocations``, ``bytes``,
    ``growths``: reallocs that grew a block) and still live at the snapshot (``live_*``)."""

    file: str
    line: int
    function: str
    allocations: int
    bytes: int
    growths: int
    live_blocks: int
    live_bytes: int


def line_stats(profile: Profile, *, thread: int | None = None) -> dict[LineKey, LineStat]:
    """Per ``(file, line)`` time of the profile (all threads unless ``thread``)."""
    mask = select_samples(profile, thread=thread)
    totals = stack_totals(profile, mask)
    busy_mask = (profile.flags & FLAG_IDLE) == 0
    if mask is not None:
        busy_mask &= mask
    busy = stack_totals(profile, busy_mask)
    whole = totals.total_ns
    self_ns: dict[LineKey, int] = {}
    total_ns: dict[LineKey, int] = {}
    cpu_ns: dict[LineKey, int] = {}
    self_n: dict[LineKey, int] = {}
    total_n: dict[LineKey, int] = {}
    function: dict[LineKey, str] = {}
    frames = profile.frames
    for stack_id in totals.present():
        stack = profile.stacks[stack_id]
        if not stack:
            continue
        weight = int(totals.weight_ns[stack_id])
        count = int(totals.samples[stack_id])
        inner = frames[stack[-1]]
        key = (inner.file, inner.line)
        function.setdefault(key, inner.function)
        self_ns[key] = self_ns.get(key, 0) + weight
        self_n[key] = self_n.get(key, 0) + count
        cpu_ns[key] = cpu_ns.get(key, 0) + int(busy.weight_ns[stack_id])
        seen: set[LineKey] = set()
        for index in stack:
            frame = frames[index]
            line_key = (frame.file, frame.line)
            if line_key in seen:
                continue
            seen.add(line_key)
            function.setdefault(line_key, frame.function)
            total_ns[line_key] = total_ns.get(line_key, 0) + weight
            total_n[line_key] = total_n.get(line_key, 0) + count

    def pct(value: int) -> float:
        return 100.0 * value / whole if whole else 0.0

    return {
        key: LineStat(
            file=key[0],
            line=key[1],
            function=function[key],
            self_ns=self_ns.get(key, 0),
            total_ns=total,
            cpu_ns=cpu_ns.get(key, 0),
            self_samples=self_n.get(key, 0),
            total_samples=total_n[key],
            self_pct=pct(self_ns.get(key, 0)),
            total_pct=pct(total),
            cpu_pct=pct(cpu_ns.get(key, 0)),
        )
        for key, total in total_ns.items()
    }


def heap_lines(snapshot: HeapSnapshot) -> dict[LineKey, LineAlloc]:
    """Per ``(file, line)`` allocations of a heap snapshot (innermost frame of each stack).

    Lines with allocation totals (``meta.extra["sites"]``) or live rows both appear; a snapshot
    saved without sites gives allocation totals of 0 and the live numbers only.
    """
    allocated: dict[LineKey, tuple[str, int, int, int]] = {}
    for row in _sites(snapshot.meta.extra.get("sites")):
        key = (str(row["file"]), int(row["line"]))
        before = allocated.get(key, (str(row.get("function", "")), 0, 0, 0))
        allocated[key] = (
            before[0],
            before[1] + int(row.get("allocations", 0)),
            before[2] + int(row.get("bytes", 0)),
            before[3] + int(row.get("growths", 0)),
        )
    live: dict[LineKey, tuple[str, float, int]] = {}
    if len(snapshot):
        size = len(snapshot.stacks)
        byte_sums = np.bincount(snapshot.stack, weights=snapshot.bytes, minlength=size)
        count_sums = np.bincount(snapshot.stack, weights=snapshot.count, minlength=size)
        for stack_id in np.flatnonzero(count_sums).tolist():
            stack = snapshot.stacks[stack_id]
            if not stack:
                continue
            inner = snapshot.frames[stack[-1]]
            key = (inner.file, inner.line)
            name, blocks, nbytes = live.get(key, (inner.function, 0.0, 0))
            live[key] = (name, blocks + float(count_sums[stack_id]), nbytes + int(byte_sums[stack_id]))
    result: dict[LineKey, LineAlloc] = {}
    for key in {**allocated, **live}:
        name_a, allocations, nbytes, growths = allocated.get(key, ("", 0, 0, 0))
        name_l, blocks, live_bytes = live.get(key, ("", 0.0, 0))
        result[key] = LineAlloc(
            file=key[0],
            line=key[1],
            function=name_a or name_l,
            allocations=allocations,
            bytes=nbytes,
            growths=growths,
            live_blocks=round(blocks),
            live_bytes=live_bytes,
        )
    return result


def _sites(value: Any) -> Iterable[dict[str, Any]]:
    if not isinstance(value, list):
        return ()
    return (row for row in value if isinstance(row, dict) and "file" in row and "line" in row)


def lines_by_file(keys: Iterable[LineKey]) -> dict[str, list[int]]:
    """The line numbers of each file among ``keys``, ascending (files in first-seen order)."""
    result: dict[str, list[int]] = {}
    for file, line in keys:
        result.setdefault(file, []).append(line)
    for lines in result.values():
        lines.sort()
    return result
