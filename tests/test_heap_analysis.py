"""Leak report and heap text reports, against hand-built snapshots with known leaks."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest
from aether_perf.analysis.heap import LeakGroup, OriginTotal, leak_report
from aether_perf.errors import InvalidArgument
from aether_perf.model import Frame, HeapMeta, HeapSnapshot
from aether_perf.report.heap_text import render_heap_summary, render_leak_report

KIB = 1024
FRAMES = [
    Frame("<module>", "app.py", 40, 1),  # 0
    Frame("main", "app.py", 30, 28),  # 1
    Frame("leak", "app.py", 12, 10),  # 2
    Frame("cache_put", "lib/cache.py", 77, 70),  # 3
]
# Stack 3 repeats stack 0's frames: equal stacks merge in the report.
STACKS = [(0, 1, 2), (0, 1, 3), (), (0, 1, 2)]
LEAK_BYTES = 10_000 * KIB + 5 * KIB
LEAK_BLOCKS = 10_005


def meta(mode: str = "exact", rate: int = 0) -> HeapMeta:
    return HeapMeta(
        mode,
        rate,
        1_700_000_000.0,
        3.0,
        "3.11.7",
        False,
        50 * 2**20,
        30 * 2**20,
        9,
        8,
        40 * 2**20,
        20 * 2**20,
    )


def build() -> HeapSnapshot:
    """10,000 x 1 KiB from leak() (+5 more through an equal stack), 300 x 48 B from cache_put(),
    2 x 4 KiB with no Python frames, and 3 blocks allocated before tracking started (time < 0)."""
    stack = [0] * 10_000 + [3] * 5 + [1] * 300 + [2] * 2 + [1] * 3
    size = [KIB] * 10_005 + [48] * 300 + [4 * KIB] * 2 + [999_999] * 3
    time_ns = list(range(1_000, 1_000 + 10_000 * 10, 10)) + [50] * 5 + [7_000] * 300 + [9, 9] + [-5, -6, -7]
    return HeapSnapshot(
        FRAMES,
        STACKS,
        stack=stack,
        size=size,
        bytes=size,
        count=np.ones(len(stack)),
        tid=[1] * len(stack),
        time_ns=time_ns,
        meta=meta(),
    )


def test_leak_report_groups_by_stack_with_exact_totals() -> None:
    report = leak_report(build(), exclude=())  # every origin, the stackless blocks included
    assert report.total_bytes == LEAK_BYTES + 300 * 48 + 2 * 4 * KIB
    assert report.total_blocks == LEAK_BLOCKS + 300 + 2
    assert report.stacks == 3
    first, second, third = report.groups
    assert first == LeakGroup(
        (FRAMES[0], FRAMES[1], FRAMES[2]), LEAK_BYTES, LEAK_BLOCKS, 50, 1_000 + 9_999 * 10
    )
    assert (second.frames[-1].function, second.bytes, second.blocks) == ("cache_put", 14_400, 300)
    assert (second.first_alloc_ns, second.last_alloc_ns) == (7_000, 7_000)
    assert (third.frames, third.bytes, third.blocks) == ((), 8 * KIB, 2)
    # Blocks allocated before tracking started (time_ns < 0) are not leaks.
    assert build().total_bytes - report.total_bytes == 3 * 999_999
    assert report.omitted_stacks == 0
    # By default the blocks with no Python frames are totalled apart, not charged to the program.
    default = leak_report(build())
    assert default.total_bytes == report.total_bytes - 8 * KIB and default.stacks == 2
    assert default.excluded["no-frames"] == OriginTotal(8 * KIB, 2, 1)


def test_leak_report_threshold() -> None:
    report = leak_report(build(), min_bytes=10_000, exclude=())
    assert [g.bytes for g in report.groups] == [LEAK_BYTES, 14_400]
    assert report.total_bytes == LEAK_BYTES + 14_400
    assert (report.omitted_stacks, report.omitted_bytes, report.omitted_blocks) == (1, 8 * KIB, 2)
    assert leak_report(build(), min_bytes=10**9).groups == []
    with pytest.raises(InvalidArgument):
        leak_report(build(), min_bytes=-1)


def test_leak_report_of_sampled_snapshot_sums_estimates() -> None:
    snap = HeapSnapshot(
        FRAMES,
        STACKS,
        stack=[0, 0, 1],
        size=[KIB, 2 * KIB, 48],
        bytes=[524_800, 525_312, 524_312],
        count=[512.5, 256.5, 10_923.2],
        tid=[1, 2, 1],
        time_ns=[5, 9, 7],
        meta=meta("sampled", 512 * KIB),
    )
    report = leak_report(snap)
    assert [(g.bytes, g.blocks) for g in report.groups] == [(1_050_112, 769), (524_312, 10_923)]
    assert report.total_bytes == snap.total_bytes
    assert report.mode == "sampled" and report.sample_rate == 512 * KIB
    assert (report.groups[0].first_alloc_ns, report.groups[0].last_alloc_ns) == (5, 9)


def test_leak_report_of_empty_snapshot() -> None:
    snap = HeapSnapshot([], [], stack=[], size=[], bytes=[], count=[], tid=[], time_ns=[], meta=meta())
    report = leak_report(snap)
    assert (report.total_bytes, report.total_blocks, report.groups) == (0, 0, [])


def _render(func: Any, *args: Any, **kwargs: Any) -> str:
    out = io.StringIO()
    func(*args, file=out, **kwargs)
    return out.getvalue()


def test_full_leak_report_lists_every_stack_innermost_first() -> None:
    text = _render(render_leak_report, leak_report(build(), exclude=()), full=True, color=False)
    assert "\x1b" not in text
    total = LEAK_BYTES + 300 * 48 + 2 * 4 * KIB
    assert f"LEAK SUMMARY: {total:,} bytes in {LEAK_BLOCKS + 302:,} blocks from 3 stacks" in text
    assert f"{LEAK_BYTES:,} bytes in {LEAK_BLOCKS:,} blocks are still live" in text
    lines = text.splitlines()
    at = lines.index("==aether==    at leak (app.py:12)")
    assert lines[at + 1] == "==aether==    by main (app.py:30)"
    assert lines[at + 2] == "==aether==    by <module> (app.py:40)"
    assert "at cache_put (lib/cache.py:77)" in text
    assert "at <no Python frames>" in text
    assert text.index("leak (app.py:12)") < text.index("cache_put") < text.index("LEAK SUMMARY")


def test_summary_leak_report_prints_only_totals() -> None:
    text = _render(
        render_leak_report, leak_report(build(), min_bytes=10_000, exclude=()), full=False, color=False
    )
    assert " at " not in text and "\x1b" not in text
    assert (
        f"LEAK SUMMARY: {LEAK_BYTES + 14_400:,} bytes in {LEAK_BLOCKS + 300:,} blocks from 2 stacks" in text
    )
    assert "not shown: 8,192 bytes in 2 blocks from 1 stack" in text


def test_leak_report_colour_only_when_asked() -> None:
    coloured = _render(render_leak_report, leak_report(build()), full=True, color=True)
    assert "\x1b[" in coloured
    plain = _render(render_leak_report, leak_report(build()), full=True)  # a StringIO is no terminal
    assert "\x1b" not in plain


def test_no_leaks() -> None:
    snap = HeapSnapshot([], [], stack=[], size=[], bytes=[], count=[], tid=[], time_ns=[], meta=meta())
    text = _render(render_leak_report, leak_report(snap), full=True, color=False)
    assert "LEAK SUMMARY: 0 bytes in 0 blocks from 0 stacks" in text


def test_heap_summary_text() -> None:
    snap = build()
    text = _render(render_heap_summary, snap, top=2, color=False)
    assert "\x1b" not in text
    summary = snap.summary()
    assert f"live: {snap.total_bytes:,} bytes in {len(snap):,} blocks" in text
    assert f"{summary.small_bytes:,}" in text and f"{summary.small_count:,}" in text
    assert f"{summary.large_bytes:,}" in text and f"{summary.medium_count:,}" in text
    assert f"allocated {50 * 2**20:,} bytes" in text and f"peak {40 * 2**20:,} bytes" in text
    assert "leak (app.py:12) <- main (app.py:30)" in text
    assert f"{LEAK_BYTES:,}" in text
    assert "Top 2 stacks" in text
    assert "\x1b[" in _render(render_heap_summary, snap, color=True)


def test_heap_summary_of_sampled_snapshot_says_estimated() -> None:
    snap = HeapSnapshot(
        FRAMES, STACKS, stack=[0], size=[KIB], bytes=[524_800], count=[512.5], tid=[1], time_ns=[1],
        meta=meta("sampled", 512 * KIB),
    )  # fmt: skip
    text = _render(render_heap_summary, snap, color=False)
    assert "sampled" in text and "512KiB" in text and "(estimated)" in text
    assert "524,800" in text
