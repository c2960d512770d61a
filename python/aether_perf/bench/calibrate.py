"""How many loops make one value: long enough for the timer, short enough to take many values.

The timer is ``time.perf_counter``. Its *effective* resolution (the smallest step two successive
reads show, which includes the cost of the call) is measured rather than trusted from
``get_clock_info``; a value must be at least ``RESOLUTION_FACTOR`` times that, and at least the
requested target duration. Calibration follows pytest-benchmark and asv: double the loops until
one value takes a sizeable part of the target, then scale linearly to reach it.
Standard library only: worker processes load this file directly (see ``worker.py``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

#: A value lasts at least this many timer resolutions, so quantisation stays under 0.1%.
RESOLUTION_FACTOR = 1000
#: Loops are never calibrated above this (a benchmark of an empty function stays finite).
MAX_LOOPS = 10**9


def timer_resolution(samples: int = 200) -> float:
    """The smallest non-zero difference between successive ``perf_counter`` reads, in seconds."""
    clock = time.perf_counter
    best = math.inf
    for _ in range(samples):
        start = clock()
        now = clock()
        while now == start:
            now = clock()
        best = min(best, now - start)
    return best


def time_loops(call: Callable[[], object], loops: int) -> float:
    """Seconds that ``loops`` calls of ``call`` take (the loop itself included, as in timeit)."""
    clock = time.perf_counter
    iterations = range(loops)
    start = clock()
    for _ in iterations:
        call()
    return clock() - start


def time_loops_running(
    call: Callable[[], object], loops: int, run_delay_ns: Callable[[], int] | None
) -> float:
    """Like :func:`time_loops`, minus the time the thread waited for a CPU meanwhile
    (``run_delay_ns()`` is the thread's cumulative run-queue wait, -1 when unknown): what the
    loops take on a machine with nothing else to run. On a busy 2-core machine a 10 ms timing
    is rarely free of preemption, so calibrating on raw wall time would pick too few loops.

    The clock is read outside the two wait readings: reading ``/proc`` is a system call, and the
    scheduler may switch away on its return, so a wait can fall between a reading and the loop;
    timing the whole window makes every counted wait part of the timed span."""
    if run_delay_ns is None:
        return time_loops(call, loops)
    clock = time.perf_counter
    iterations = range(loops)
    start = clock()
    before = run_delay_ns()
    for _ in iterations:
        call()
    after = run_delay_ns()
    duration = clock() - start
    if before < 0 or after < 0:
        return duration
    return max(duration - (after - before) * 1e-9, 0.0)


def calibrate(
    call: Callable[[], object],
    target: float,
    resolution: float | None = None,
    run_delay_ns: Callable[[], int] | None = None,
) -> int:
    """Loops per value so that one value lasts about ``target`` seconds (at least
    ``RESOLUTION_FACTOR`` timer resolutions). The first call may warm caches; it is not used.
    With ``run_delay_ns`` (see :func:`time_loops_running`) time spent waiting for a CPU is
    left out of the timings."""
    floor = (resolution if resolution is not None else timer_resolution()) * RESOLUTION_FACTOR
    target = max(target, floor)
    call()
    loops = 1
    while True:
        duration = time_loops_running(call, loops, run_delay_ns)
        if duration >= target * 0.25 or loops >= MAX_LOOPS:
            break
        # Jump straight towards the target once a duration is measurable; double otherwise.
        if duration > floor / 10:
            loops = min(MAX_LOOPS, max(loops * 2, math.ceil(loops * target * 0.5 / duration)))
        else:
            loops = min(MAX_LOOPS, loops * 2)
    # The fastest of five: a preemption during one timing must not shrink the loops.
    duration = min(duration, *(time_loops_running(call, loops, run_delay_ns) for _ in range(4)))
    scaled = math.ceil(loops * target / max(duration, 1e-9))
    return max(1, min(MAX_LOOPS, scaled))
