"""Noise covariates of one measured value: what else the machine did to this thread meanwhile.

- ``run_delay_ns``: time the thread spent runnable but waiting for a CPU (second field of
  ``/proc/thread-self/schedstat``). On a shared machine this is the direct measure of a neighbour
  taking our CPU; the research note found it correlating 0.55-0.74 with slow processes.
- ``nivcsw``: involuntary context switches of the thread (``getrusage(RUSAGE_THREAD)``).

A value whose run-queue wait exceeds a fraction of its duration is *contaminated* and re-run.
Its *running time* (duration minus the wait) is what the value would have taken had nothing else
wanted the CPU; per-process estimates use it (see ``results.ProcessRun.median``).
Standard library only: worker processes load this file directly (see ``worker.py``).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass

_SCHEDSTAT = "/proc/thread-self/schedstat"


def run_delay_ns() -> int:
    """The calling thread's cumulative run-queue wait in ns; -1 when the kernel does not say."""
    return _run_delay_ns()


def _run_delay_ns() -> int:
    try:
        with open(_SCHEDSTAT, "rb") as handle:
            return int(handle.read().split()[1])
    except (OSError, IndexError, ValueError):
        return -1  # no schedstat (kernel without CONFIG_SCHEDSTATS): covariate unknown


def _nivcsw() -> int:
    return resource.getrusage(resource.RUSAGE_THREAD).ru_nivcsw


@dataclass(frozen=True)
class Snapshot:
    run_delay_ns: int
    nivcsw: int


def snapshot() -> Snapshot:
    """The thread's counters now; subtract two with :func:`delta`."""
    return Snapshot(_run_delay_ns(), _nivcsw())


def delta(before: Snapshot, after: Snapshot) -> tuple[int, int]:
    """(run-queue wait in ns, involuntary switches) between two snapshots; wait -1 if unknown."""
    if before.run_delay_ns < 0 or after.run_delay_ns < 0:
        wait = -1
    else:
        wait = after.run_delay_ns - before.run_delay_ns
    return wait, after.nivcsw - before.nivcsw


def contaminated(run_delay_ns: int, duration_s: float, limit: float) -> bool:
    """Whether the thread waited for a CPU more than ``limit`` (a fraction) of the value's time."""
    if run_delay_ns < 0 or duration_s <= 0:
        return False
    return run_delay_ns > limit * duration_s * 1e9


def timed(body: Callable[[], object]) -> tuple[float, int, int]:
    """Run ``body`` once: (its duration in seconds, the run-queue wait inside it in ns or -1 when
    unknown, involuntary switches).

    Reading ``/proc`` is a system call, on whose return the scheduler may switch away, so a wait
    can fall between a reading and the timed span. The readings are therefore timed too, and
    whatever wait could have happened outside the span (at most the readings' own duration) is
    not attributed to it.
    """
    clock = time.perf_counter
    outer = clock()
    before = snapshot()
    start = clock()
    body()
    end = clock()
    after = snapshot()
    outer_end = clock()
    duration = end - start
    wait, switches = delta(before, after)
    if wait >= 0:
        outside_ns = ((outer_end - outer) - duration) * 1e9
        wait = max(0, min(int(wait - outside_ns), int(duration * 1e9)))
    return duration, wait, switches


def running_seconds(duration: float, wait_ns: int) -> float:
    """``duration`` minus the run-queue wait (all of it when the wait is unknown)."""
    return duration - wait_ns * 1e-9 if wait_ns > 0 else duration
