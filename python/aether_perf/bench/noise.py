"""Noise covariates of one measured value: what else the machine did to this thread meanwhile.

- ``run_delay_ns``: time the thread spent runnable but waiting for a CPU (second field of
  ``/proc/thread-self/schedstat``). On a shared machine this is the direct measure of a neighbour
  taking our CPU; the research note found it correlating 0.55-0.74 with slow processes.
- ``nivcsw``: involuntary context switches of the thread (``getrusage(RUSAGE_THREAD)``).

A value whose run-queue wait exceeds a fraction of its duration is *contaminated* and re-run.
Standard library only: worker processes load this file directly (see ``worker.py``).
"""

from __future__ import annotations

import resource
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
