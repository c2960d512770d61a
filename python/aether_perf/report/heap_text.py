"""Text reports (rich) of heap snapshots and leak reports.

:func:`render_heap_summary` prints the recording's exact totals, the live size classes and the top
allocating stacks; :func:`render_leak_report` prints a valgrind-like leak report::

    ==aether== 10,240,000 bytes in 10,000 blocks are still live, allocated 0.1s..0.5s after start
    ==aether==    at leak (app.py:12)
    ==aether==    by main (app.py:30)
    ==aether==
    ==aether== LEAK SUMMARY: 10,240,000 bytes in 10,000 blocks from 1 stack

(the stacks, innermost frame first, only with ``full=True``). Colour follows
:func:`aether_perf.report.text.make_console`: only on a terminal unless asked, never with
``color=False``.
"""

from __future__ import annotations

import time
from typing import TextIO

from rich import box
from rich.table import Table
from rich.text import Text

from aether_perf.analysis.heap import LeakGroup, LeakReport
from aether_perf.analysis.leak_origin import ORIGIN_LABELS
from aether_perf.errors import InvalidArgument
from aether_perf.model.frame import Frame
from aether_perf.model.heap import NO_FRAMES, HeapSnapshot
from aether_perf.report.paths import short_path
from aether_perf.report.text import make_console
from aether_perf.units import format_duration, format_size

__all__ = ["PREFIX", "render_heap_summary", "render_leak_report"]

#: What every line of the leak report starts with, like valgrind's ``==pid==``.
PREFIX = "==aether=="


def _shown(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _frame(frame: Frame) -> str:
    if not frame.file:
        return _shown(frame.function)
    return _shown(f"{frame.function} ({short_path(frame.file)}:{frame.line})")


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _pct(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "-"


def render_heap_summary(
    snapshot: HeapSnapshot, *, top: int = 10, file: TextIO | None = None, color: bool | None = None
) -> None:
    """Print totals, live size classes and the ``top`` stacks by live bytes."""
    if isinstance(top, bool) or not isinstance(top, int) or top < 0:
        raise InvalidArgument(f"top must be a non-negative integer, got {top!r}")
    console = make_console(file, color)
    meta = snapshot.meta
    sampled = meta.mode == "sampled"
    title = Text(f"aether heap snapshot ({meta.mode}", style="bold")
    if sampled:
        title.append(f", one sample per {format_size(meta.sample_rate)} on average")
    title.append(")")
    if meta.python_version:
        title.append(f", Python {meta.python_version}")
    if meta.native:
        title.append(", native allocations included")
    if meta.start_time:
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(meta.start_time))
        title.append(f", started {started}")
    console.print(title)
    console.print(
        f"duration {format_duration(meta.duration)}  peak {meta.peak_bytes:,} bytes  "
        f"current {meta.current_bytes:,} bytes",
        style="dim",
    )
    console.print(
        f"allocated {meta.allocated_bytes:,} bytes in {_plural(meta.allocations, 'block')}  "
        f"freed {meta.freed_bytes:,} bytes in {_plural(meta.frees, 'block')} (exact totals)",
        style="dim",
    )
    series = snapshot.series
    if series is not None and len(series):
        heap_peak = series.heap_peak()
        rss_peak = series.rss_peak()
        every = format_duration(series.interval_ns / 1e9)
        line = f"memory over time ({len(series):,} points, every {every}):"
        if heap_peak is not None:
            when = format_duration(heap_peak.time_ns / 1e9)
            line += f" tracked heap peak {format_size(heap_peak.bytes)} at {when}"
        if rss_peak is not None:
            line += f", RSS peak {format_size(rss_peak.bytes)} at {format_duration(rss_peak.time_ns / 1e9)}"
        console.print(line, style="dim")
    summary = snapshot.summary()
    estimate = " (estimated)" if sampled else ""
    console.print(
        f"live: {summary.total_bytes:,} bytes in {_plural(summary.total_objects, 'block')}{estimate}"
    )
    classes = Table(box=box.SIMPLE, title="Live blocks by size", title_justify="left")
    classes.add_column("class")
    classes.add_column("blocks", justify="right")
    classes.add_column("bytes", justify="right")
    classes.add_column("% bytes", justify="right")
    rows = (
        ("small (0-64 B)", summary.small_count, summary.small_bytes),
        ("medium (65-1024 B)", summary.medium_count, summary.medium_bytes),
        ("large (>1024 B)", summary.large_count, summary.large_bytes),
    )
    for label, count, nbytes in rows:
        classes.add_row(label, f"{count:,}", f"{nbytes:,}", _pct(nbytes, summary.total_bytes))
    console.print(classes)
    if top == 0:
        return
    spots = snapshot.hot_spots(top)
    table = Table(box=box.SIMPLE, title=f"Top {len(spots)} stacks by live bytes", title_justify="left")
    table.add_column("bytes", justify="right")
    table.add_column("%", justify="right")
    table.add_column("blocks", justify="right")
    table.add_column("allocated at (innermost frame first)", overflow="fold")
    for spot in spots:
        where = " <- ".join(_frame(f) for f in reversed(spot.frames)) if spot.frames else NO_FRAMES
        table.add_row(f"{spot.bytes:,}", f"{spot.pct:.1f}", f"{spot.count:,}", where)
    if not spots:
        console.print("no live blocks", style="dim")
    else:
        console.print(table)


def _group_lines(group: LeakGroup, index: int, count: int, sampled: bool) -> list[Text]:
    what = "are estimated still live" if sampled else "are still live"
    if group.blocks == 1 and not sampled:
        what = "is still live"
    first = format_duration(group.first_alloc_ns / 1e9)
    last = format_duration(group.last_alloc_ns / 1e9)
    when = f"allocated {first} after start" if first == last else f"allocated {first}..{last} after start"
    head = Text(f"{PREFIX} ")
    head.append(f"{group.bytes:,} bytes in {_plural(group.blocks, 'block')}", style="bold red")
    head.append(f" {what}, {when} (stack {index} of {count})")
    lines = [head]
    if not group.frames:
        lines.append(Text(f"{PREFIX}    at {NO_FRAMES}"))
    for depth, frame in enumerate(reversed(group.frames)):
        word = "at" if depth == 0 else "by"
        line = Text(f"{PREFIX}    {word} ")
        line.append(_frame(frame), style="cyan" if depth == 0 else "")
        lines.append(line)
    lines.append(Text(PREFIX))
    return lines


def render_leak_report(
    report: LeakReport, *, full: bool, file: TextIO | None = None, color: bool | None = None
) -> None:
    """Print the leak report: every leaking stack with ``full=True``, then the LEAK SUMMARY line."""
    console = make_console(file, color)
    sampled = report.mode == "sampled"
    count = len(report.groups)
    if full:
        for index, group in enumerate(report.groups, start=1):
            for line in _group_lines(group, index, count, sampled):
                console.print(line)
    summary = Text(f"{PREFIX} ")
    summary.append("LEAK SUMMARY:", style="bold")
    totals = f" {report.total_bytes:,} bytes in {_plural(report.total_blocks, 'block')} from "
    summary.append(totals + _plural(count, "stack"), style="bold red" if count else "green")
    console.print(summary)
    if sampled:
        console.print(
            f"{PREFIX}    (estimated from samples, one per {format_size(report.sample_rate)} on average)",
            style="dim",
        )
    if report.omitted_stacks:
        console.print(
            f"{PREFIX}    not shown: {report.omitted_bytes:,} bytes in "
            f"{_plural(report.omitted_blocks, 'block')} from {_plural(report.omitted_stacks, 'stack')} "
            "under the threshold",
            style="dim",
        )
    for origin, total in report.excluded.items():
        console.print(
            f"{PREFIX}    not counted: {total.bytes:,} bytes in {_plural(total.blocks, 'block')} "
            f"{ORIGIN_LABELS.get(origin, origin)}",
            style="dim",
        )
    if not full and count:
        console.print(f"{PREFIX} Rerun with --leak-check full to see every leaking stack", style="dim")
