"""The native engine: asyncio virtual users in one process, closed or open model.

Closed model: at each stage start the runner tops the virtual users up to the stage's count; every
user loops "pick a transaction by weight, run it, think" until the test ends.

Open model (wrk2/k6 arrival-rate style): a scheduler computes each transaction's *intended* start
on a constant-interval schedule at the stage's rate and hands it to a free virtual user. When none is
free (all ``pool_size`` users busy: the server is slow) the start waits in a backlog and is taken by
the next user to finish. Its corrected latency runs from the intended start, so a stalled server
shows in the percentiles instead of silently lowering the load (coordinated omission); its raw
latency runs from the actual start. A start more than ``LATE_AFTER`` behind schedule counts as
late; starts still in the backlog when the test ends count as dropped.

When the test ends no transaction starts; those in flight get ``min(timeout, 2 s)`` to finish and
are then cancelled (not recorded). Ctrl-C ends the test early: the result so far comes back with
``interrupted`` set and the stages cut to the time they ran. All times are ``time.monotonic_ns()``.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import itertools
import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from aether_perf.load.client import HttpClient, HttpError
from aether_perf.load.result import LoadTestResult, StageResult, TransactionStats, Window
from aether_perf.load.scenario import Scenario, Stage, Transaction

__all__ = ["LATE_AFTER", "Progress", "ProgressCallback", "Recorder", "error_kind", "run", "run_async"]

#: A start this far (seconds) behind its intended time is late.
LATE_AFTER = 0.010
_S = 1_000_000_000


@dataclass
class Progress:
    """A snapshot for live progress: cumulative counts and the last second's rate and p95."""

    elapsed: float
    total: float
    stage: str
    users: int
    completed: int
    errors: int
    late: int
    backlog: int  # open model: starts waiting for a free virtual user right now
    recent_rps: float
    recent_p95: float  # seconds, nan when nothing completed in the last second


ProgressCallback = Callable[[Progress], None]


def error_kind(exc: BaseException) -> str:
    """A short, low-cardinality name for what went wrong."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "connection reset"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, asyncio.IncompleteReadError):
        return "connection closed by server"
    if isinstance(exc, HttpError):
        return f"bad response: {exc}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip().splitlines()[0][:80] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Recorder:
    """Collects completed transactions into per-stage stats and per-second windows."""

    def __init__(self, stages: list[Stage], t0: int) -> None:
        self.t0 = t0
        self.stages = [StageResult(s) for s in stages]
        self._starts = [t0 + int(s.start * _S) for s in stages]
        self.windows: dict[int, Window] = {}
        self.users = 0
        self.completed = 0
        self.errors = 0

    def stage_of(self, t: int) -> StageResult:
        return self.stages[max(0, bisect.bisect_right(self._starts, t) - 1)]

    def record(self, name: str, intended: int, started: int, ended: int, kind: str | None) -> None:
        stats = self.stage_of(intended).transactions.get(name)
        if stats is None:
            stats = self.stage_of(intended).transactions[name] = TransactionStats()
        second = (ended - self.t0) // _S
        window = self.windows.get(second)
        if window is None:
            window = self.windows[second] = Window(second)
        self.completed += 1
        if kind is None:
            stats.corrected.record(ended - intended)
            stats.raw.record(ended - started)
            window.corrected.record(ended - intended)
            window.raw.record(ended - started)
        else:
            stats.errors[kind] = stats.errors.get(kind, 0) + 1
            window.errors += 1
            self.errors += 1

    def users_changed(self, delta: int) -> None:
        self.users += delta
        stage = self.stage_of(time.monotonic_ns())
        if self.users > stage.peak_users:
            stage.peak_users = self.users

    def stage_begins(self, index: int) -> None:
        """The users running as a stage begins count towards its peak (they may never change in it)."""
        stage = self.stages[index]
        stage.peak_users = max(stage.peak_users, self.users)


class _Chooser:
    """Weighted random choice of a transaction (cumulative weights + bisect)."""

    def __init__(self, transactions: tuple[Transaction, ...]) -> None:
        self.items = transactions
        self.cumulative = list(itertools.accumulate(t.weight for t in transactions))
        self.total = self.cumulative[-1]

    def __call__(self, rng: random.Random) -> Transaction:
        if len(self.items) == 1:
            return self.items[0]
        return self.items[bisect.bisect_right(self.cumulative, rng.random() * self.total)]


async def _execute(txn: Transaction, client: HttpClient) -> str | None:
    """Run one transaction; its error kind, or None when it succeeded."""
    client.failure = None
    try:
        if txn.is_async:
            await txn.func(client)
        else:
            await asyncio.to_thread(txn.func, client)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return error_kind(exc)
    return client.failure


class _Run:
    def __init__(self, scenario: Scenario, host: str, seed: int | None) -> None:
        self.scenario = scenario
        self.host = host
        self.plan = scenario.stages()
        self.choose = _Chooser(scenario.transaction_list)
        self.seed = seed if seed is not None else random.randrange(1 << 30)
        self.stopping = False
        self.tasks: set[asyncio.Task[None]] = set()
        self.t0 = 0
        self.rec: Recorder

    def client(self) -> HttpClient:
        return HttpClient(self.host, timeout=self.scenario.seconds[2])

    def spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[call-overload]
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def sleep_until(self, t: int) -> None:
        delay = (t - time.monotonic_ns()) / _S
        if delay > 0:
            await asyncio.sleep(delay)

    # ---- closed model --------------------------------------------------------------------------
    async def user(self, index: int) -> None:
        rng = random.Random(self.seed * 7919 + index)
        low, high = self.scenario.think_range
        client = self.client()
        rec = self.rec
        rec.users_changed(+1)
        try:
            while not self.stopping:
                txn = self.choose(rng)
                started = time.monotonic_ns()
                kind = await _execute(txn, client)
                rec.record(txn.name, started, started, time.monotonic_ns(), kind)
                if high > 0 and not self.stopping:
                    await asyncio.sleep(rng.uniform(low, high))
        finally:
            rec.users_changed(-1)
            client.close()

    async def closed(self) -> None:
        spawned = 0
        for index, stage in enumerate(self.plan):
            await self.sleep_until(self.t0 + int(stage.start * _S))
            self.rec.stage_begins(index)
            while spawned < (stage.users or 0):
                self.spawn(self.user(spawned))
                spawned += 1
        await self.sleep_until(self.t0 + int(self.plan[-1].end * _S))

    # ---- open model ----------------------------------------------------------------------------
    async def arrival(self, client: HttpClient, rng: random.Random, intended: int) -> None:
        rec = self.rec
        rec.users_changed(+1)
        try:
            while True:
                started = time.monotonic_ns()
                if started - intended > self.late_ns:
                    rec.stage_of(intended).late += 1
                txn = self.choose(rng)
                kind = await _execute(txn, client)
                rec.record(txn.name, intended, started, time.monotonic_ns(), kind)
                if self.stopping or not self.backlog:
                    break
                intended = self.backlog.popleft()
        finally:
            rec.users_changed(-1)
            self.idle.append((client, rng))

    async def open(self) -> None:
        self.late_ns = int(LATE_AFTER * _S)
        self.backlog: deque[int] = deque()
        pool = self.scenario.pool_size
        self.idle: list[tuple[HttpClient, random.Random]] = []
        created = 0
        end = self.t0 + int(self.plan[-1].end * _S)
        for index, stage in enumerate(self.plan):
            self.rec.stage_begins(index)
            interval = _S / (stage.rate or 1.0)
            stage_start = self.t0 + int(stage.start * _S)
            stage_end = self.t0 + int(stage.end * _S)
            k = 0
            while True:
                intended = stage_start + int(k * interval)
                if intended >= stage_end:
                    break
                k += 1
                await self.sleep_until(intended)
                if self.idle:
                    client, rng = self.idle.pop()
                elif created < pool:
                    client, rng = self.client(), random.Random(self.seed * 7919 + created)
                    created += 1
                else:
                    self.backlog.append(intended)
                    continue
                self.spawn(self.arrival(client, rng, intended))
        await self.sleep_until(end)
        for intended in self.backlog:
            self.rec.stage_of(intended).dropped += 1
        self.backlog.clear()

    # ---- both ----------------------------------------------------------------------------------
    async def ticker(self, progress: ProgressCallback | None) -> None:
        total = self.scenario.total_duration
        late = 0
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic_ns()
            second = (now - self.t0) // _S - 1
            rec = self.rec
            window = rec.windows.get(second)
            if window is None:
                window = rec.windows[second] = Window(second)
            window.users = rec.users
            if progress is not None:
                late = sum(s.late for s in rec.stages)
                progress(
                    Progress(
                        elapsed=(now - self.t0) / _S,
                        total=total,
                        stage=rec.stage_of(now).name,
                        users=rec.users,
                        completed=rec.completed,
                        errors=rec.errors,
                        late=late,
                        backlog=len(getattr(self, "backlog", ())),
                        recent_rps=float(window.count),
                        recent_p95=window.corrected.percentile(95) / _S
                        if window.corrected.count
                        else math.nan,
                    )
                )

    async def main(self, progress: ProgressCallback | None, start_at: float | None) -> LoadTestResult:
        if start_at is not None:
            delay = start_at - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
        started_at = time.time()
        self.t0 = time.monotonic_ns()
        self.rec = Recorder(self.plan, self.t0)
        ticker = asyncio.ensure_future(self.ticker(progress))
        interrupted = False
        try:
            if self.scenario.model == "closed":
                await self.closed()
            else:
                await self.open()
        except asyncio.CancelledError:
            # Ctrl-C (asyncio.run cancels the main task): stop like at the end and return what was
            # measured so far; a second Ctrl-C interrupts the grace period below for good.
            interrupted = True
            for intended in getattr(self, "backlog", ()):
                self.rec.stage_of(intended).dropped += 1
        finally:
            self.stopping = True
            if self.tasks:
                grace = min(self.scenario.seconds[2], 2.0)
                _, pending = await asyncio.wait(set(self.tasks), timeout=grace)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
        result = LoadTestResult(self.scenario.name, self.scenario.model, self.host, started_at=started_at)
        if interrupted:
            result.interrupted = True
            elapsed = (time.monotonic_ns() - self.t0) / _S
            for stage in self.rec.stages:  # the time each stage really ran
                ran = max(0.0, min(stage.stage.duration, elapsed - stage.stage.start))
                stage.stage = dataclasses.replace(stage.stage, duration=ran)
        result.stages = self.rec.stages
        result.timeline = [self.rec.windows[k] for k in sorted(self.rec.windows)]
        return result


async def run_async(
    scenario: Scenario,
    *,
    host: str,
    progress: ProgressCallback | None = None,
    start_at: float | None = None,
    seed: int | None = None,
    stop_signal: int | None = None,
) -> LoadTestResult:
    """Run ``scenario`` against ``host`` in the running event loop (see :func:`run`).

    ``stop_signal`` (a signal number) ends the test early, as Ctrl-C does.
    """
    if stop_signal is not None:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(stop_signal, task.cancel)
    return await _Run(scenario, host, seed).main(progress, start_at)


def run(
    scenario: Scenario,
    *,
    host: str,
    progress: ProgressCallback | None = None,
    start_at: float | None = None,
    seed: int | None = None,
    stop_signal: int | None = None,
) -> LoadTestResult:
    """Run ``scenario`` against ``host`` in this process, on a new event loop; return its result.

    ``start_at`` (a ``time.time()`` value) delays the start so several workers begin together.
    """
    return asyncio.run(
        run_async(
            scenario, host=host, progress=progress, start_at=start_at, seed=seed, stop_signal=stop_signal
        )
    )
