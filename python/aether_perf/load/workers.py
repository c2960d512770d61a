"""``--workers N``: the same scenario in N processes on this machine, merged exactly.

Each worker is a forked process running the native engine with its share of the load (users split
as evenly as whole numbers allow, or the rate divided by N, and the open model's user pool split
likewise). All start at one agreed wall-clock instant, so their stages and per-second windows line
up; each sends back its result as a dict (histograms as bucket counts), and the parent adds them up
(:meth:`LoadTestResult.merge`): counts add and histograms merge bucket by bucket, so percentiles of
the merged result are those of the union of every worker's transactions.

Fork, not spawn: transactions are functions of a scenario file or of the caller's module, which a
forked child already has; nothing needs pickling but the result dicts.
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import queue as queue_mod
import signal
import time
from typing import Any

from aether_perf.errors import InvalidArgument, RunFailed
from aether_perf.load.result import LoadTestResult
from aether_perf.load.runner import Progress, ProgressCallback, run
from aether_perf.load.scenario import Scenario

__all__ = ["MAX_WORKERS", "run_workers", "split"]

MAX_WORKERS = 256
#: What the parent sends its workers on Ctrl-C: end early and send back the result so far.
STOP_SIGNAL = signal.SIGUSR1


def split(scenario: Scenario, workers: int) -> list[Scenario]:
    """The scenario each of ``workers`` processes runs; together they make the whole load."""
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise InvalidArgument(f"workers must be a whole number from 1 to {MAX_WORKERS}, got {workers!r}")
    if scenario.users is not None:
        if scenario.users < workers:
            raise InvalidArgument(f"{workers} workers need at least {workers} users, got {scenario.users}")
        base, extra = divmod(scenario.users, workers)
        return [dataclasses.replace(scenario, users=base + (i < extra)) for i in range(workers)]
    rate = scenario.rate or 0.0
    pool = math.ceil(scenario.pool_size / workers)
    return [
        dataclasses.replace(scenario, arrival_rate=rate / workers, max_users=pool) for _ in range(workers)
    ]


def _worker(index: int, scenario: Scenario, host: str, start_at: float, out: Any) -> None:
    def progress(p: Progress) -> None:
        out.put(("progress", index, dataclasses.asdict(p)))

    # Ctrl-C reaches the whole process group; only the parent acts on it, and stops the workers
    # with STOP_SIGNAL, so each returns what it measured so far exactly once.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        result = run(
            scenario,
            host=host,
            progress=progress,
            start_at=start_at,
            seed=os.getpid(),
            stop_signal=STOP_SIGNAL,
        )
        out.put(("result", index, result.to_dict()))
    except BaseException as exc:
        out.put(("error", index, f"{type(exc).__name__}: {exc}"))


def run_workers(
    scenario: Scenario, *, host: str, workers: int, progress: ProgressCallback | None = None
) -> LoadTestResult:
    """Run ``scenario`` split over ``workers`` processes and return the merged result."""
    parts = split(scenario, workers)
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    start_at = time.time() + 0.2 + 0.02 * workers  # time for every child to fork and get ready
    procs = [
        context.Process(target=_worker, args=(i, part, host, start_at, out), daemon=True)
        for i, part in enumerate(parts)
    ]
    for proc in procs:
        proc.start()
    results: dict[int, dict[str, Any]] = {}
    latest: dict[int, dict[str, Any]] = {}
    deadline = start_at + scenario.total_duration + scenario.seconds[2] + 30
    interrupted = False
    try:
        while len(results) < workers:
            try:
                kind, index, payload = out.get(timeout=0.5)
            except KeyboardInterrupt:
                if interrupted:
                    raise  # a second Ctrl-C: give up on the results
                interrupted = True
                for proc in procs:
                    if proc.is_alive() and proc.pid is not None:
                        os.kill(proc.pid, STOP_SIGNAL)
                deadline = time.time() + scenario.seconds[2] + 15
                continue
            except queue_mod.Empty:
                dead = [p for i, p in enumerate(procs) if i not in results and not p.is_alive()]
                if dead or time.time() > deadline:
                    raise RunFailed(
                        f"a load-test worker died (exit status {dead[0].exitcode})"
                        if dead
                        else "load-test workers did not finish in time"
                    ) from None
                continue
            if kind == "result":
                results[index] = payload
            elif kind == "error":
                raise RunFailed(f"load-test worker {index} failed: {payload}")
            else:
                latest[index] = payload
                if progress is not None and len(latest) == workers:
                    progress(_combined(list(latest.values())))
    finally:
        for proc in procs:
            if proc.is_alive() and len(results) < workers:
                proc.terminate()
        for proc in procs:
            proc.join(timeout=5)
    merged = LoadTestResult.merge([LoadTestResult.from_dict(results[i]) for i in range(workers)])
    for k, (stage_result, planned) in enumerate(zip(merged.stages, scenario.stages(), strict=True)):
        # the whole test's plan, not worker 0's share of it (cut to the time it ran when interrupted)
        ran = max(r.stages[k].stage.duration for r in merged.worker_results)
        stage_result.stage = dataclasses.replace(planned, duration=min(ran, planned.duration))
    merged.workers = workers
    return merged


def _combined(snapshots: list[dict[str, Any]]) -> Progress:
    first = snapshots[0]
    p95s = [s["recent_p95"] for s in snapshots if not math.isnan(s["recent_p95"])]
    return Progress(
        elapsed=max(s["elapsed"] for s in snapshots),
        total=first["total"],
        stage=first["stage"],
        users=sum(s["users"] for s in snapshots),
        completed=sum(s["completed"] for s in snapshots),
        errors=sum(s["errors"] for s in snapshots),
        late=sum(s["late"] for s in snapshots),
        backlog=sum(s["backlog"] for s in snapshots),
        recent_rps=sum(s["recent_rps"] for s in snapshots),
        recent_p95=max(p95s) if p95s else math.nan,  # an upper bound: no histogram travels with progress
    )
