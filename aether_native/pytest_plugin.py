"""pytest plugin: fail a test whose memory use or leaks exceed a limit.

Registered through the ``pytest11`` entry point, so installing aether-native enables it::

    @pytest.mark.limit_memory("10 MiB")
    def test_builds_the_index(): ...           # the tracked heap's peak during the test

    @pytest.mark.limit_leaks("1 MiB", warmup=1)
    def test_handler_does_not_leak(): ...      # what the test's own code allocated and still holds

Both track only the test function's call (not its fixtures), in exact mode, with the
:class:`~aether_native.memory.AllocationTracker`, and only for marked tests: unmarked tests run
untracked. Limits are sizes as ``aether`` reads them (``"10 MiB"``, ``"512KB"``, ``4096``); a bad
one makes the test error in setup, naming the marker.

- ``limit_memory(limit)`` compares the exact high-water mark of the heap (bytes allocated minus
  freed since the call started). On failure the message lists the stacks that held the most
  bytes when the heap first went over the limit (watched every millisecond; a spike shorter than
  that is judged by the exact peak but its stacks come from the end of the test).
- ``limit_leaks(limit, warmup=0)`` runs a full collection at the end, then counts the bytes
  allocated under the test function (stacks through its frame: pytest's own bookkeeping of the
  call in progress is not the test's) and still held, from the program's stacks only (imports,
  standard-library caches, def/class statements and the tracker are not leaks:
  :mod:`aether_perf.analysis.leak_origin`). Threads the test starts have no test frame on their
  stacks, so what they leak is not counted.
  ``warmup=N`` calls the test function N times untracked first, so first-call caches of the code
  under test are warm; the test must then be safe to call more than once.

A test that itself runs an AllocationTracker cannot use these markers (one tracker per process).
"""

from __future__ import annotations

import gc
from collections.abc import Generator
from typing import TYPE_CHECKING, NoReturn

import pytest

if TYPE_CHECKING:
    from aether_perf.model.frame import Frame
    from aether_perf.model.heap import HeapSnapshot

__all__ = ["pytest_configure", "pytest_runtest_call", "pytest_runtest_setup"]

#: Stacks named in a failure message, and frames shown per stack (innermost first).
TOP_STACKS = 5
FRAMES_SHOWN = 4
_LIMITS = pytest.StashKey[tuple[int | None, int | None, int]]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "limit_memory(limit): fail the test when the heap it allocates peaks above limit "
        "(a size such as '10 MiB'); aether_native",
    )
    config.addinivalue_line(
        "markers",
        "limit_leaks(limit, warmup=0): fail the test when its own code leaves more than limit "
        "bytes allocated at its end; aether_native",
    )


def _bad(message: str) -> NoReturn:
    """A marker with bad arguments: the test errors in setup with this one-line message."""
    pytest.fail(message, pytrace=False)


def _size(marker: pytest.Mark, what: str) -> int:
    from aether_perf.errors import InvalidArgument
    from aether_perf.units import parse_size

    if len(marker.args) != 1:
        _bad(f"@pytest.mark.{marker.name} takes one limit, e.g. {what}('10 MiB')")
    try:
        return parse_size(marker.args[0], name=f"the {marker.name} limit", minimum=0)
    except InvalidArgument as exc:
        _bad(f"@pytest.mark.{marker.name}: {exc}")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Check the markers' arguments before the test runs (a bad limit errors the test)."""
    memory = item.get_closest_marker("limit_memory")
    leaks = item.get_closest_marker("limit_leaks")
    if memory is None and leaks is None:
        return
    memory_limit = _size(memory, "limit_memory") if memory is not None else None
    leak_limit = _size(leaks, "limit_leaks") if leaks is not None else None
    warmup = 0
    if leaks is not None:
        unknown = set(leaks.kwargs) - {"warmup"}
        if unknown:
            _bad(f"@pytest.mark.limit_leaks: unknown argument {sorted(unknown)[0]!r}")
        warmup = leaks.kwargs.get("warmup", 0)
        if isinstance(warmup, bool) or not isinstance(warmup, int) or not 0 <= warmup <= 100:
            _bad(f"@pytest.mark.limit_leaks: warmup must be 0..100, got {warmup!r}")
    if memory is not None and memory.kwargs:
        _bad(f"@pytest.mark.limit_memory: unknown argument {sorted(memory.kwargs)[0]!r}")
    item.stash[_LIMITS] = (memory_limit, leak_limit, warmup)


def _where(frames: tuple[Frame, ...]) -> str:
    import os

    from aether_perf.analysis.leak_origin import leak_origin

    shown = [f for f in reversed(frames) if leak_origin((f,)) != "tracker"][:FRAMES_SHOWN]
    if not shown:
        return "<no Python frames>"
    text = " <- ".join(f"{f.function} ({os.path.basename(f.file)}:{f.line})" for f in shown)
    return text + (" <- ..." if len(frames) > len(shown) else "")


def _blocks(n: int) -> str:
    return f"{n:,} block" + ("" if n == 1 else "s")


def _under_test(snapshot: HeapSnapshot, item: pytest.Item) -> HeapSnapshot:
    """The rows of ``snapshot`` whose stack passes through the test function's frame (all rows
    when the item has no Python function to match)."""
    import numpy as np
    from aether_perf.model.heap import HeapSnapshot

    function = getattr(item, "function", None)
    code = getattr(getattr(function, "__func__", function), "__code__", None)
    if code is None:
        return snapshot
    mine = [f.file == code.co_filename and f.first_line == code.co_firstlineno for f in snapshot.frames]
    keep = np.array([any(mine[i] for i in stack) for stack in snapshot.stacks] or [False])
    mask = keep[snapshot.stack] if len(snapshot.stack) else np.zeros(0, dtype=bool)
    return HeapSnapshot(
        snapshot.frames,
        snapshot.stacks,
        meta=snapshot.meta,
        **{name: getattr(snapshot, name)[mask] for name in HeapSnapshot.COLUMNS},
    )


def _stack_lines(snapshot: HeapSnapshot) -> list[str]:
    from aether_perf.analysis.leak_origin import leak_origin
    from aether_perf.units import format_size

    lines = []
    for spot in snapshot.hot_spots(None):
        if leak_origin(spot.frames) == "tracker":
            continue
        lines.append(f"    {format_size(spot.bytes):>9} in {_blocks(spot.count)}: {_where(spot.frames)}")
        if len(lines) == TOP_STACKS:
            break
    return lines


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    limits = item.stash.get(_LIMITS, None)
    if limits is None:
        return (yield)
    from aether_perf.errors import SamplerBusyError
    from aether_perf.units import format_size

    from aether_native.memory import AllocationTracker

    memory_limit, leak_limit, warmup = limits
    tracker = AllocationTracker(mode="exact", series_interval="1ms" if memory_limit is not None else None)
    if memory_limit is not None:
        tracker.capture_over(memory_limit)
    for _ in range(warmup):
        item.runtest()
    gc.collect()
    try:
        tracker.start()
    except SamplerBusyError as exc:
        pytest.fail(f"aether limit markers need the allocation tracker: {exc}", pytrace=False)
    try:
        result = yield
    finally:
        gc.collect()
        tracker.stop()
    problems = []
    if memory_limit is not None:
        peak = tracker.statistics()["peak_bytes"]
        if peak > memory_limit:
            over = tracker.over_limit_snapshot()
            when = "when the heap first went over the limit"
            if over is None:
                over, when = tracker.snapshot(), "at the end of the test (the spike was too short to catch)"
            problems.append(
                f"limit_memory: the test's heap peaked at {format_size(peak)} ({peak:,} bytes), over "
                f"the limit of {format_size(memory_limit)}. Top allocating stacks {when}:"
            )
            mine = _under_test(over, item)  # pytest's own call bookkeeping is noise here
            problems.extend(_stack_lines(mine if len(mine) else over))
    if leak_limit is not None:
        from aether_perf.analysis.heap import leak_report

        report = leak_report(_under_test(tracker.snapshot(), item))
        if report.total_bytes > leak_limit:
            problems.append(
                f"limit_leaks: the test leaked {format_size(report.total_bytes)} "
                f"({report.total_bytes:,} bytes in {report.total_blocks:,} blocks), over the limit of "
                f"{format_size(leak_limit)}. Top leaking stacks:"
            )
            for group in report.groups[:TOP_STACKS]:
                problems.append(
                    f"    {format_size(group.bytes):>9} in {_blocks(group.blocks)}: {_where(group.frames)}"
                )
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
    return result
