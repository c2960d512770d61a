"""What a benchmark run produced: per-process values with their noise covariates, and identity.

``Suite`` is one run (one side of a comparison); ``BenchmarkResult`` one benchmark in it;
``ProcessRun`` one worker process's values. Times are seconds per loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from aether_perf.bench.stats import Summary, median, summarize

__all__ = ["BenchmarkResult", "Identity", "ProcessRun", "Suite"]


@dataclass
class ProcessRun:
    """One worker process: ``values[i]`` (wall time per loop) included ``run_delay_ns[i]`` ns of
    run-queue wait (-1 when unknown) and ``nivcsw[i]`` involuntary switches; ``running[i]`` is the
    value minus that wait, per loop; ``contaminated[i]`` marks a value still over the wait limit
    after the re-runs ran out; ``reruns`` counts values measured again."""

    hashseed: int
    values: list[float]
    run_delay_ns: list[int]
    nivcsw: list[int]
    contaminated: list[bool]
    reruns: int = 0
    instructions: list[float | None] | None = None
    running: list[float] | None = None

    def times(self) -> list[float]:
        """What the statistics use: the running times (each value minus its run-queue wait) when
        recorded, else the clean values (those not marked contaminated; all if none is clean).

        On a shared machine a value is often preempted even after re-runs; the wait it recorded
        is exactly the time another thread held the CPU, so subtracting it recovers what the
        value would have taken alone (cache disturbance aside), where dropping it would leave
        few values or none."""
        if self.running and len(self.running) == len(self.values):
            return list(self.running)
        clean = [value for value, bad in zip(self.values, self.contaminated, strict=False) if not bad]
        return clean or list(self.values)

    @property
    def median(self) -> float:
        """This process's estimate: the median of :meth:`times`."""
        return median(self.times())


@dataclass
class BenchmarkResult:
    id: str
    name: str
    group: str | None
    file: str
    loops: int
    processes: list[ProcessRun] = field(default_factory=list)

    def process_medians(self) -> list[float]:
        return [run.median for run in self.processes if run.values]

    def values(self) -> list[float]:
        """Every process's :meth:`ProcessRun.times`, in process order."""
        return [value for run in self.processes for value in run.times()]

    @cached_property
    def summary(self) -> Summary:
        return summarize([run.times() for run in self.processes if run.values])

    @property
    def contaminated(self) -> int:
        return sum(sum(run.contaminated) for run in self.processes)

    @property
    def reruns(self) -> int:
        return sum(run.reruns for run in self.processes)

    def instructions_per_loop(self) -> list[float]:
        """Per-process medians of the counter metric (empty when no counter was available)."""
        out: list[float] = []
        for run in self.processes:
            counts = [count for count in (run.instructions or []) if count is not None]
            if counts:
                out.append(median(counts))
        return out


@dataclass(frozen=True)
class Identity:
    """Where a run was measured. ``machine_id`` names the hardware (host, CPU model, CPU count);
    results from another machine or another Python are compared with a warning."""

    machine_id: str
    hostname: str
    cpu_model: str
    cpu_count: int
    platform: str
    python_implementation: str
    python_version: str
    python_executable: str
    git_commit: str | None = None
    git_branch: str | None = None
    git_dirty: bool | None = None

    @property
    def python_id(self) -> str:
        return f"{self.python_implementation}-{'.'.join(self.python_version.split('.')[:2])}"


@dataclass
class Suite:
    """One run: ``name`` (from --save, else "current"), when, where, how, and the results."""

    name: str
    created: str
    identity: Identity
    settings: dict[str, Any]
    benchmarks: list[BenchmarkResult]

    def by_id(self) -> dict[str, BenchmarkResult]:
        return {bench.id: bench for bench in self.benchmarks}
