"""The allocation hooks' cost: 5,000 pairs of small allocations (tuples and lists kept, then freed)
untracked, and inside an AllocationTracker session in exact and in sampled mode (each call
starts and stops its own session, so a run's benchmarks do not disturb one another)."""

from __future__ import annotations

from aether_perf.bench import group

from aether_native import AllocationTracker

COUNT = 5_000


def churn() -> int:
    kept = [[i, (i, i + 1)] for i in range(COUNT)]
    return len(kept)


def untracked() -> int:
    return churn()


def exact() -> int:
    with AllocationTracker(mode="exact"):
        return churn()


def sampled() -> int:
    with AllocationTracker(mode="sampled", sample_rate="512KiB"):
        return churn()


def start_stop() -> None:
    with AllocationTracker(mode="exact"):
        pass


with group("alloc") as g:
    g.add("untracked", untracked)
    g.add("exact", exact)
    g.add("sampled", sampled)
    g.add("start_stop", start_stop)
