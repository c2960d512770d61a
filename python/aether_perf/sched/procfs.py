"""Per-thread scheduler counters from ``/proc/<pid>/task/<tid>/``.

``schedstat`` gives on-CPU ns, run-queue wait ns and timeslices; ``status`` the voluntary and
involuntary context switches (per thread: the process-level ``/proc/<pid>/status`` counts only the
leader thread); ``sched`` the exact ``se.nr_migrations`` (needs CONFIG_SCHED_DEBUG, else None);
``stat`` field 39 the CPU the thread last ran on and field 3 its state. A thread that exits
between listing and reading is skipped.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass

_open = io.open  # bound now: while aether_perf.io tracks, builtins.open is the tracked one

__all__ = ["ThreadCounters", "read_task", "read_tasks"]


@dataclass(frozen=True, slots=True)
class ThreadCounters:
    """One reading of one thread's scheduler counters (times in nanoseconds)."""

    tid: int
    comm: str
    state: str
    processor: int
    cpu_ns: int
    run_delay_ns: int
    timeslices: int
    voluntary: int
    involuntary: int
    migrations: int | None


def _read(path: str) -> str:
    with _open(path, encoding="ascii", errors="replace") as handle:
        return handle.read()


def read_task(tid: int, pid: int | str = "self") -> ThreadCounters | None:
    """The counters of thread ``tid`` of process ``pid``, or None if it is gone."""
    base = f"/proc/{pid}/task/{tid}"
    try:
        stat = _read(f"{base}/stat")
        schedstat = _read(f"{base}/schedstat").split()
        status = _read(f"{base}/status")
    except (FileNotFoundError, ProcessLookupError):
        return None
    comm = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()  # fields[0] is field 3 (state)
    voluntary = involuntary = 0
    for line in status.splitlines():
        if line.startswith("voluntary_ctxt_switches:"):
            voluntary = int(line.split()[1])
        elif line.startswith("nonvoluntary_ctxt_switches:"):
            involuntary = int(line.split()[1])
    migrations: int | None = None
    try:
        for line in _read(f"{base}/sched").splitlines():
            if line.startswith("se.nr_migrations"):
                migrations = int(line.split(":")[1])
                break
    except OSError:
        pass
    return ThreadCounters(
        tid=tid,
        comm=comm,
        state=fields[0],
        processor=int(fields[39 - 3]),
        cpu_ns=int(schedstat[0]),
        run_delay_ns=int(schedstat[1]),
        timeslices=int(schedstat[2]),
        voluntary=voluntary,
        involuntary=involuntary,
        migrations=migrations,
    )


def read_tasks(pid: int | str = "self") -> dict[int, ThreadCounters]:
    """The counters of every thread of process ``pid`` (default: this one), by tid."""
    try:
        tids = [int(name) for name in os.listdir(f"/proc/{pid}/task")]
    except FileNotFoundError:
        raise ProcessLookupError(f"no such process: {pid}") from None
    out: dict[int, ThreadCounters] = {}
    for tid in tids:
        counters = read_task(tid, pid)
        if counters is not None:
            out[tid] = counters
    return out
