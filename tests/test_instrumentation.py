"""Instrumentation profiling: statistics against known sleeps, spans that nest per thread and per
asyncio task, thread safety, histogram accuracy against numpy, the report table."""

from __future__ import annotations

import asyncio
import gc
import inspect
import io
import math
import re
import subprocess
import sys
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aether_perf import InvalidArgument
from aether_perf.instrumentation import (
    Histogram,
    Trace,
    active_trace,
    instrument,
    profile_scope,
    record_duration,
    registry,
    report,
    reset,
    start_trace,
    stats,
    stop_trace,
    trace,
)
from aether_perf.instrumentation import metrics as metrics_module
from aether_perf.instrumentation import timing as timing_module
from aether_perf.instrumentation import tracing as tracing_module
from aether_perf.instrumentation.histogram import bucket_bounds, bucket_index
from aether_perf.model import Span

MS = 1_000_000
ANSI = re.compile(r"\x1b\[")


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    reset()
    yield
    while active_trace() is not None:  # a failed test must not leave a trace running for the next
        stop_trace()
        pytest.fail("the test left a trace active")
    reset()


def nesting_errors(spans: list[Span]) -> list[str]:
    """Spans on one track must nest: no partial overlap, and depth = number of enclosing spans."""
    errors = []
    by_track: dict[tuple[int, str], list[Span]] = defaultdict(list)
    for span in spans:
        by_track[(span.tid, span.track)].append(span)
    for key, group in by_track.items():
        group.sort(key=lambda s: (s.start_ns, -s.end_ns, s.depth))
        open_spans: list[Span] = []
        for span in group:
            if span.end_ns < span.start_ns:
                errors.append(f"{key}: {span.name} ends before it starts")
            while open_spans and open_spans[-1].end_ns <= span.start_ns:
                open_spans.pop()
            if open_spans and span.end_ns > open_spans[-1].end_ns:
                errors.append(f"{key}: {span.name} overlaps {open_spans[-1].name} partially")
            if span.depth != len(open_spans):
                errors.append(f"{key}: {span.name} has depth {span.depth}, inside {len(open_spans)} spans")
            open_spans.append(span)
    return errors


def contains(outer: Span, inner: Span) -> bool:
    return outer.start_ns <= inner.start_ns and inner.end_ns <= outer.end_ns


# -- statistics against known durations -----------------------------------------------------------


def test_sleeps_of_known_length_give_their_statistics() -> None:
    @instrument(name="sleep20")
    def sleep20() -> None:
        time.sleep(0.020)

    @instrument(name="sleep5")
    def sleep5() -> None:
        time.sleep(0.005)

    outside: dict[str, list[float]] = {"sleep20": [], "sleep5": []}
    for fn, name, times in ((sleep20, "sleep20", 5), (sleep5, "sleep5", 10)):
        for _ in range(times):
            t0 = time.perf_counter()
            fn()
            outside[name].append(time.perf_counter() - t0)

    for name, truth, count in (("sleep20", 0.020, 5), ("sleep5", 0.005, 10)):
        s = stats(name)
        seen = np.array(outside[name])  # the same calls timed independently, a few us longer each
        assert s.count == count
        # Each call took at least its sleep, and no longer than it took seen from outside.
        assert truth <= s.min <= s.p50 <= s.p90 <= s.p99 <= s.max <= seen.max()
        assert truth * count <= s.total <= seen.sum()
        assert s.mean == pytest.approx(s.total / count)
        # Within a few ms of the truth: the median call as timed from outside (robust to a call
        # that was preempted between the outer and the inner clock reads), and the slowest ones.
        assert s.p50 == pytest.approx(float(np.median(seen)), abs=0.005)
        assert np.sort(seen)[-2] - 0.005 <= s.p99
        assert truth <= s.mean <= seen.mean()
    assert set(registry()) == {"sleep20", "sleep5"}


def test_default_name_is_module_and_qualname_and_wrapper_keeps_identity() -> None:
    def plain(x: int, *, y: int = 1) -> int:
        """Doc."""
        return x + y

    wrapped = instrument(plain)
    assert wrapped(1, y=2) == 3
    assert wrapped.__name__ == "plain"
    assert wrapped.__doc__ == "Doc."
    assert wrapped.__wrapped__ is plain  # type: ignore[attr-defined]
    name = f"{__name__}.test_default_name_is_module_and_qualname_and_wrapper_keeps_identity.<locals>.plain"
    assert stats(name).count == 1
    assert inspect.signature(wrapped) == inspect.signature(plain)

    class Greeter:
        def __call__(self) -> str:
            return "called"

    assert instrument(Greeter())() == "called"
    assert stats(f"{__name__}.{Greeter.__qualname__}").count == 1


def test_methods_staticmethods_and_classmethods() -> None:
    class Service:
        def __init__(self) -> None:
            self.calls = 0

        @instrument
        def handle(self, n: int) -> int:
            self.calls += 1
            return n * 2

        @instrument(name="svc.static")
        @staticmethod
        def static(n: int) -> int:
            return n + 1

        @instrument(name="svc.klass")
        @classmethod
        def klass(cls, n: int) -> str:
            return f"{cls.__name__}{n}"

    service = Service()
    assert [service.handle(i) for i in range(3)] == [0, 2, 4]
    assert service.calls == 3
    assert Service.static(1) == 2 and service.static(2) == 3
    assert Service.klass(7) == "Service7"
    qual = f"{__name__}.test_methods_staticmethods_and_classmethods.<locals>.Service.handle"
    assert stats(qual).count == 3
    assert stats("svc.static").count == 2
    assert stats("svc.klass").count == 1


def test_exceptions_are_recorded_and_reraised() -> None:
    class Boom(Exception):
        pass

    @instrument(name="fails")
    def fails(delay: float) -> None:
        time.sleep(delay)
        raise Boom("no")

    @instrument(name="afails")
    async def afails() -> None:
        await asyncio.sleep(0.01)
        raise Boom("async no")

    outside = {}
    with trace() as t:
        started = time.perf_counter()
        with pytest.raises(Boom, match="no"):
            fails(0.01)
        outside["fails"] = time.perf_counter() - started
        started = time.perf_counter()
        with pytest.raises(Boom, match="async no"):
            asyncio.run(afails())
        outside["afails"] = time.perf_counter() - started
        with pytest.raises(Boom), profile_scope("scope.fails"):
            raise Boom
    for name in ("fails", "afails"):
        s = stats(name)
        assert s.count == 1 and 0.01 <= s.total <= outside[name]
    assert stats("scope.fails").count == 1
    assert sorted(s.name for s in t.spans) == ["afails", "fails", "scope.fails"]
    assert not nesting_errors(t.spans)
    assert active_trace() is None


def test_coroutines_are_timed_over_the_await_not_the_creation() -> None:
    @instrument(name="fetch")
    async def fetch(delay: float) -> float:
        await asyncio.sleep(delay)
        return delay

    assert inspect.iscoroutinefunction(fetch)

    outside: dict[str, float] = {}

    async def main() -> list[float]:
        created = fetch(0.02)  # creating the coroutine records nothing...
        await asyncio.sleep(0.03)
        assert stats("fetch").count == 0
        started = time.perf_counter()
        first = await created
        outside["await"] = time.perf_counter() - started
        # ...and its time counts from the await, not from its creation 30 ms earlier.
        assert 0.02 <= stats("fetch").total <= outside["await"]
        started = time.perf_counter()
        rest = await asyncio.gather(fetch(0.02), fetch(0.02))
        outside["gather"] = time.perf_counter() - started
        return [first, *rest]

    assert asyncio.run(main()) == [0.02, 0.02, 0.02]
    s = stats("fetch")
    assert s.count == 3
    # The two gathered awaits ran concurrently: each took its 20 ms, both within the gather.
    assert 0.02 <= s.min and s.max <= max(outside.values())


def test_generators_are_timed_inside_until_completion() -> None:
    @instrument(name="produce")
    def produce(n: int) -> Iterator[int]:
        for i in range(n):
            time.sleep(0.01)
            yield i

    assert inspect.isgeneratorfunction(produce)
    items = []
    started = time.perf_counter()
    for item in produce(3):
        time.sleep(0.005)  # the consumer's time is not the generator's
        items.append(item)
        if item < 2:
            assert stats("produce").count == 0  # recorded once, when it finishes
    wall = time.perf_counter() - started
    assert items == [0, 1, 2]
    s = stats("produce")
    assert s.count == 1
    # The generator slept 3 x 10 ms; the consumer's 3 x 5 ms are left out of it.
    assert 0.03 <= s.total <= wall - 0.015

    # Closed early (also what garbage collection does): recorded then, once.
    gen = produce(10)
    assert next(gen) == 0
    gen.close()
    assert stats("produce").count == 2
    gen = produce(10)
    next(gen)
    del gen
    gc.collect()
    assert stats("produce").count == 3
    produce(5)  # never started: nothing to record
    gc.collect()
    assert stats("produce").count == 3


def test_generator_protocol_is_preserved() -> None:
    @instrument(name="echo")
    def echo() -> Generator[int, Any, list[Any]]:
        received: list[Any] = []
        try:
            while True:
                try:
                    value = yield len(received)
                except KeyError as exc:
                    value = f"caught {exc.args[0]}"
                if value == "stop":
                    return received
                received.append(value)
        finally:
            received.append("closed")

    gen = echo()
    assert next(gen) == 0
    assert gen.send("a") == 1
    assert gen.throw(KeyError("k")) == 2
    with pytest.raises(StopIteration) as stop:
        gen.send("stop")
    assert stop.value.value == ["a", "caught k", "closed"]
    with pytest.raises(ValueError, match="bad"):
        gen2 = echo()
        next(gen2)
        gen2.throw(ValueError("bad"))
    assert stats("echo").count == 2


def test_async_generators_and_async_scopes() -> None:
    @instrument(name="ticks")
    async def ticks(n: int) -> AsyncIterator[int]:
        for i in range(n):
            await asyncio.sleep(0.01)
            yield i

    assert inspect.isasyncgenfunction(ticks)

    scope = profile_scope("consume")

    async def main() -> list[int]:
        seen = []
        async with scope:
            async for i in ticks(3):
                await asyncio.sleep(0.005)
                seen.append(i)
        return seen

    started = time.perf_counter()
    assert asyncio.run(main()) == [0, 1, 2]
    outside = time.perf_counter() - started
    assert 0.045 <= scope.elapsed <= outside
    assert stats("consume").count == 1
    assert stats("ticks").count == 1
    # Each __anext__ awaited a 10 ms sleep; the consumer's 3 x 5 ms are left out.
    assert 0.03 <= stats("ticks").total <= scope.elapsed - 0.015


def test_profile_scope_and_record_duration() -> None:
    started = time.perf_counter()
    with profile_scope("block") as scope:
        time.sleep(0.01)
    outside = time.perf_counter() - started
    assert 0.01 <= scope.elapsed <= outside
    assert stats("block").total == pytest.approx(scope.elapsed)
    assert math.isnan(profile_scope("block").elapsed)

    record_duration("upstream", 0.25)
    record_duration("upstream", "750ms")
    record_duration("upstream", 0)
    record_duration("upstream", "250us")
    s = stats("upstream")
    assert s.count == 4
    assert s.total == pytest.approx(1.00025)
    assert s.min == 0 and s.max == pytest.approx(0.75)
    for bad in (-1, math.nan, math.inf, True, "soon", None):
        with pytest.raises(InvalidArgument):
            record_duration("upstream", bad)  # type: ignore[arg-type]
    assert stats("upstream").count == 4
    with pytest.raises(InvalidArgument):
        profile_scope("")
    with pytest.raises(InvalidArgument):
        instrument(name="")
    with pytest.raises(InvalidArgument):
        instrument(42)  # type: ignore[call-overload]


def test_registry_stats_and_reset() -> None:
    @instrument(name="declared")
    def declared() -> None:
        pass

    empty = stats("declared")  # known, no value yet
    assert empty.count == 0 and empty.total == 0
    assert all(math.isnan(v) for v in (empty.min, empty.max, empty.mean, empty.p50, empty.p99))
    assert "declared" not in registry()
    with pytest.raises(InvalidArgument, match="no instrumentation is named 'nope'"):
        stats("nope")
    declared()
    record_duration("other", 1)
    assert list(registry()) == ["declared", "other"]
    reset(["other"])
    assert list(registry()) == ["declared"]
    reset()
    assert registry() == {}
    declared()
    assert stats("declared").count == 1


def test_the_inlined_hot_path_fills_the_histogram_like_histogram_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    durations = [0, 1, 255, 256, 257, 1000, 123_456, 20 * MS, 3_600_000_000_000, 7]
    readings = []
    for n, duration in enumerate(durations * 2):
        readings += [10**12 + n * 10**13, 10**12 + n * 10**13 + duration]
    clock = iter(readings)

    def fake_now() -> int:
        return next(clock)

    monkeypatch.setattr(timing_module, "_now", fake_now)

    @instrument(name="inline")
    def fn() -> None:
        pass

    for _ in durations:
        fn()
    for _ in durations:
        with profile_scope("inline"):
            pass
    expected = Histogram.from_values(durations * 2)
    got = stats("inline").histogram
    assert got.counts == expected.counts
    assert (got.count, got.total, got.min, got.max) == (expected.count, expected.total, 0, max(durations))


# -- histogram ---------------------------------------------------------------------------------


def test_histogram_buckets_are_contiguous_and_within_one_percent() -> None:
    previous_high = 0
    for index in range(0, 6000):
        low, high = bucket_bounds(index)
        assert low == previous_high
        assert bucket_index(low) == index == bucket_index(high - 1)
        assert (high - low) <= max(1, low / 128)
        previous_high = high
    assert bucket_index(3_600 * 10**9) < 4700  # 1 ns .. 1 hour in under 4,700 buckets


@pytest.mark.parametrize("distribution", ["lognormal", "uniform", "exponential", "bimodal"])
def test_percentiles_match_numpy_within_one_percent(distribution: str) -> None:
    rng = np.random.default_rng(20240601)
    n = 50_001
    sample = {
        "lognormal": rng.lognormal(13, 1.2, n),
        "uniform": rng.uniform(1_000, 5 * MS, n),
        "exponential": rng.exponential(2 * MS, n) + 500,
        "bimodal": np.concatenate(
            [rng.normal(1 * MS, 50_000, n // 2), rng.normal(40 * MS, 2 * MS, n - n // 2)]
        ),
    }[distribution]
    values = np.maximum(sample, 0).astype(np.int64)
    for v in values.tolist():
        record_duration("dist", v / 1e9)
    s = stats("dist")
    assert s.count == n
    assert len(s.histogram.counts) < 4700  # fixed memory, not one entry per value
    assert s.total == pytest.approx(values.sum() / 1e9, rel=1e-9)
    assert s.min == values.min() / 1e9 and s.max == values.max() / 1e9
    for q, got in ((50, s.p50), (90, s.p90), (99, s.p99), (0, s.percentile(0)), (100, s.percentile(100))):
        truth = float(np.percentile(values, q)) / 1e9
        assert got == pytest.approx(truth, rel=0.01), q
    for extra_q in (1, 10, 25, 75, 99.9):
        truth = float(np.percentile(values, extra_q)) / 1e9
        assert s.percentile(extra_q) == pytest.approx(truth, rel=0.01), extra_q


def test_histogram_merge_and_edges() -> None:
    a = Histogram.from_values([5, 500, 50_000])
    b = Histogram.from_values([1, 10**9])
    a.merge(b)
    assert (a.count, a.min, a.max, a.total) == (5, 1, 10**9, 5 + 500 + 50_000 + 1 + 10**9)
    assert a.percentile(0) == 1 and a.percentile(100) == 10**9
    assert math.isnan(Histogram().percentile(50)) and math.isnan(Histogram().mean)
    with pytest.raises(InvalidArgument):
        a.percentile(101)
    with pytest.raises(InvalidArgument):
        a.record(-1)


# -- threads -----------------------------------------------------------------------------------


def test_eight_threads_count_exactly() -> None:
    @instrument(name="hot")
    def hot() -> None:
        pass

    calls = 10_000
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        for _ in range(calls):
            hot()
            with profile_scope("hot.scope"):
                pass
        record_duration("hot.recorded", 0.001)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible, to provoke lost updates
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(old_interval)
    assert stats("hot").count == 8 * calls
    assert sum(stats("hot").histogram.counts.values()) == 8 * calls
    assert stats("hot.scope").count == 8 * calls
    assert stats("hot.recorded").count == 8
    assert stats("hot.recorded").total == pytest.approx(0.008)


def test_ended_threads_are_folded_and_reads_during_writes_are_safe() -> None:
    @instrument(name="churn")
    def churn() -> None:
        pass

    stop = threading.Event()
    seen: list[int] = []

    def reader() -> None:
        while not stop.is_set():
            seen.append(stats("churn").count)

    watcher = threading.Thread(target=reader)
    watcher.start()
    try:
        for _ in range(60):
            thread = threading.Thread(target=lambda: [churn() for _ in range(100)])
            thread.start()
            thread.join()
    finally:
        stop.set()
        watcher.join()
    assert stats("churn").count == 6000
    assert seen == sorted(seen)  # counts only grow
    metric = metrics_module.get_metric("churn")
    gc.collect()
    metric.histogram()
    assert len(metric._entries) <= 2  # ended threads were folded into the retired histogram


def test_spans_nest_per_thread_across_threads() -> None:
    @instrument(name="inner")
    def inner() -> None:
        time.sleep(0.002)

    @instrument(name="outer")
    def outer() -> None:
        for _ in range(2):
            inner()

    tids: list[int] = []

    def worker() -> None:
        tids.append(threading.get_native_id())
        with profile_scope("top"):
            outer()

    before = time.monotonic_ns()
    with trace() as t:
        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        worker()
    after = time.monotonic_ns()
    spans = t.spans
    assert len(spans) == 5 * 4
    assert not nesting_errors(spans)
    assert {s.tid for s in spans} == set(tids)
    for tid in tids:
        mine = [s for s in spans if s.tid == tid]
        assert {s.track for s in mine} == {f"thread {tid}"}
        top = next(s for s in mine if s.name == "top")
        out = next(s for s in mine if s.name == "outer")
        inners = [s for s in mine if s.name == "inner"]
        assert (top.depth, out.depth, [s.depth for s in inners]) == (0, 1, [2, 2])
        assert contains(top, out) and all(contains(out, s) for s in inners)
        assert all(s.duration_ns >= 2 * MS for s in inners)
        assert {s.category for s in mine} == {"scope", "function"}
    assert t.start_ns is not None and t.end_ns is not None
    assert before <= t.start_ns <= min(s.start_ns for s in spans)
    assert max(s.end_ns for s in spans) <= t.end_ns <= after
    assert stats("inner").count == 5 * 2  # 5 workers x 2 calls


# -- asyncio -----------------------------------------------------------------------------------


def test_interleaved_tasks_get_their_own_tracks() -> None:
    @instrument(name="step")
    async def step(delay: float) -> None:
        await asyncio.sleep(delay)

    async def job(label: str, delay: float) -> None:
        for _ in range(3):
            with profile_scope(f"job.{label}"):
                await step(delay)
                await step(delay / 2)

    async def main() -> None:
        with profile_scope("main"):
            await asyncio.gather(
                asyncio.create_task(job("a", 0.004), name="worker-a"),
                asyncio.create_task(job("b", 0.006), name="worker-b"),
                asyncio.create_task(job("c", 0.002), name="worker-a"),  # the same name again
            )

    with trace() as t:
        asyncio.run(main())
    spans = t.spans
    assert not nesting_errors(spans)
    assert len({s.tid for s in spans}) == 1  # all on the one event-loop thread...
    tracks = defaultdict(list)
    for span in spans:
        tracks[span.track].append(span)
    main_track = next(s.track for s in spans if s.name == "main")
    assert set(tracks) == {main_track, "worker-a", "worker-b", "worker-a #2"}  # ...but on task tracks
    assert {s.name for s in tracks["worker-a"]} == {"job.a", "step"}
    assert {s.name for s in tracks["worker-a #2"]} == {"job.c", "step"}
    assert {s.name for s in tracks["worker-b"]} == {"job.b", "step"}
    for track in ("worker-a", "worker-b", "worker-a #2"):
        jobs = [s for s in tracks[track] if s.name.startswith("job.")]
        steps = [s for s in tracks[track] if s.name == "step"]
        assert len(jobs) == 3 and len(steps) == 6
        assert all(s.depth == 0 for s in jobs) and all(s.depth == 1 for s in steps)
        assert all(any(contains(j, s) for j in jobs) for s in steps)
    # The tasks really interleaved: their job spans overlap in time (on different tracks).
    a, b = tracks["worker-a"][0], tracks["worker-b"][0]
    assert a.start_ns < b.end_ns and b.start_ns < a.end_ns


def test_a_task_started_inside_a_span_starts_its_own_track_at_depth_zero() -> None:
    @instrument(name="child")
    async def child() -> None:
        await asyncio.sleep(0.001)

    def in_thread() -> None:
        with profile_scope("in.thread"):
            pass

    async def main() -> None:
        with profile_scope("parent"):
            await asyncio.create_task(child(), name="child-task")
            await asyncio.to_thread(in_thread)

    with trace() as t:
        asyncio.run(main())
    spans = {s.name: s for s in t.spans}
    assert spans["child"].track == "child-task" and spans["child"].depth == 0
    assert spans["parent"].depth == 0
    assert spans["in.thread"].track == f"thread {spans['in.thread'].tid}" and spans["in.thread"].depth == 0
    assert spans["in.thread"].tid != spans["parent"].tid
    assert not nesting_errors(t.spans)


def test_generator_resumptions_are_spans_where_the_consumer_resumes() -> None:
    @instrument(name="gen")
    def gen() -> Iterator[int]:
        yield 1
        yield 2

    with trace() as t:
        g = gen()
        with profile_scope("first"):
            next(g)
        with profile_scope("rest"):
            assert list(g) == [2]
    spans = t.spans
    assert not nesting_errors(spans)
    first = next(s for s in spans if s.name == "first")
    rest = next(s for s in spans if s.name == "rest")
    resumptions = [s for s in spans if s.name == "gen"]
    assert len(resumptions) == 3  # next(), then list(): the one that yields 2 and the one that ends it
    assert contains(first, resumptions[0]) and all(contains(rest, s) for s in resumptions[1:])
    assert all(s.category == "generator" and s.depth == 1 for s in resumptions)
    assert stats("gen").count == 1


# -- trace sessions ----------------------------------------------------------------------------


def test_spans_are_recorded_only_while_a_trace_is_active() -> None:
    @instrument(name="f")
    def f() -> None:
        pass

    f()
    t = start_trace()
    assert active_trace() is t and t.active
    f()
    with trace() as inner:
        f()
    f()
    assert stop_trace() is t and not t.active
    f()
    assert [s.name for s in t.spans] == ["f", "f", "f"]
    assert len(inner.spans) == 1
    assert stats("f").count == 5
    assert t.stop() is t  # stopping twice is harmless
    with pytest.raises(InvalidArgument):
        t.start()
    with pytest.raises(InvalidArgument, match="no trace is active"):
        stop_trace()
    assert Trace().spans == []


def test_a_span_still_open_when_the_trace_stops_is_left_out() -> None:
    @instrument(name="long")
    def long() -> None:
        stop_trace()

    t = start_trace()
    with profile_scope("before"):
        pass
    long()
    assert [s.name for s in t.spans] == ["before"]


def test_a_finished_trace_leaves_nothing_behind() -> None:
    @instrument(name="leaves")
    def leaves() -> None:
        pass

    def in_thread() -> None:
        leaves()

    t = start_trace()
    assert tracing_module.STATE.buffer is not None
    buffer = weakref.ref(tracing_module.STATE.buffer)
    leaves()  # the main thread's context now holds its position on the trace's track
    worker = threading.Thread(target=in_thread)
    worker.start()
    worker.join()
    asyncio.run(instrument(name="leaves.async")(asyncio.sleep)(0))
    t.stop()
    assert repr(t) == "<Trace stopped spans=3>"
    assert len(t.spans) == 3
    del t
    gc.collect()
    assert buffer() is None  # no context, thread or task kept the spans alive
    assert tracing_module.STATE.buffer is None


def test_max_spans_bounds_a_trace() -> None:
    @instrument(name="many")
    def many() -> None:
        pass

    with trace(max_spans=10) as t:
        for _ in range(25):
            many()
    assert len(t.spans) == 10 and t.dropped == 15
    assert stats("many").count == 25
    with pytest.raises(InvalidArgument):
        trace(max_spans=0)


def test_trace_writes_a_chrome_trace(tmp_path: Path) -> None:
    from aether_perf.export import chrome_trace

    @instrument(name="w")
    def w() -> None:
        pass

    with trace() as t:
        w()
    path = tmp_path / "t.json"
    t.write_chrome_trace(path)
    assert chrome_trace.read_spans(path) == t.spans


# -- report ------------------------------------------------------------------------------------


def test_report_is_a_table_plain_when_piped_and_coloured_when_asked() -> None:
    record_duration("slow", 0.5)
    record_duration("slow", 1.5)
    for _ in range(3):
        record_duration("fast", 0.001)
    out = io.StringIO()
    report(file=out)
    text = out.getvalue()
    assert not ANSI.search(text)
    header = next(line for line in text.splitlines() if "name" in line and "count" in line)
    assert header.split() == ["name", "count", "total", "mean", "min", "p50", "p90", "p99", "max"]
    rows = [line.split() for line in text.splitlines() if line.strip().startswith(("slow", "fast"))]
    assert rows[0][:4] == ["slow", "2", "2s", "1s"] and rows[0][-1] == "1.5s"
    assert rows[1][:3] == ["fast", "3", "3ms"]
    by_count = io.StringIO()
    report(file=by_count, sort="count")
    assert by_count.getvalue().index("fast") < by_count.getvalue().index("slow")
    coloured = io.StringIO()
    report(file=coloured, color=True)
    assert ANSI.search(coloured.getvalue())
    with pytest.raises(InvalidArgument, match="sort must be one of"):
        report(file=io.StringIO(), sort="speed")
    reset()
    empty = io.StringIO()
    report(file=empty)
    assert "no instrumented calls" in empty.getvalue()


def test_importing_and_using_it_loads_neither_numpy_nor_rich_nor_asyncio_before_a_trace() -> None:
    code = (
        "import sys\n"
        "from aether_perf.instrumentation import instrument, profile_scope, trace, stats\n"
        "@instrument\n"
        "def f(): pass\n"
        "f()\n"
        "assert 'asyncio' not in sys.modules  # only a trace needs it\n"
        "with trace() as t:\n"
        "    f()\n"
        "    with profile_scope('s'): pass\n"
        "assert stats('__main__.f').count == 2 and stats('s').p50 >= 0\n"
        "assert 'numpy' not in sys.modules and 'rich' not in sys.modules, sorted(sys.modules)\n"
        "assert not any(m.startswith('aether_native') for m in sys.modules)\n"
        # Span objects come from aether_perf.model, whose package loads numpy (for Profile).
        "assert [s.name for s in t.spans] == ['__main__.f', 's']\n"
    )
    python_path = str(Path(__file__).resolve().parent.parent / "python")
    result = subprocess.run(
        [sys.executable, "-c", code], env={"PYTHONPATH": python_path}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_wrappers_are_cheap_enough_to_leave_in() -> None:
    """Not a benchmark (bench/instrumentation_overhead.py is): a guard against a hot path that
    became 50x slower, with a bound far above the 1 us target so a busy machine cannot fail it."""

    @instrument(name="cheap")
    def cheap() -> None:
        pass

    def loop(fn: Callable[[], None], n: int = 20_000) -> float:
        started = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - started) / n

    per_call = min(loop(cheap) for _ in range(3))
    assert per_call < 20e-6
    assert stats("cheap").count == 60_000
