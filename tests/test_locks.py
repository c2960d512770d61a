"""Lock contention: instrumented locks against workloads with known hold times."""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from aether_perf import locks
from aether_perf.errors import InvalidArgument
from aether_perf.locks import (
    InstrumentedBoundedSemaphore,
    InstrumentedCondition,
    InstrumentedLock,
    InstrumentedRLock,
    InstrumentedSemaphore,
    LockRegistry,
    LockStats,
)

HOLD = 0.02  # seconds each thread holds the lock per round
ROUNDS = 10


def _fight(lock: object, rounds: int = ROUNDS, hold: float = HOLD) -> None:
    """Two threads take turns holding ``lock`` for ``hold`` seconds; a barrier makes them collide."""
    barrier = threading.Barrier(2)

    def worker() -> None:
        for _ in range(rounds):
            barrier.wait()
            with lock:  # type: ignore[attr-defined]
                time.sleep(hold)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_two_threads_fighting_show_known_contention_and_wait() -> None:
    registry = LockRegistry()
    lock = InstrumentedLock("fought", registry=registry)
    _fight(lock)
    [s] = registry.stats()
    assert s.name == "fought" and s.kind == "Lock"
    assert s.acquisitions == 2 * ROUNDS
    # Every round both arrive together: one gets it, the other waits one hold time.
    assert s.contended == ROUNDS
    expected_wait_ns = ROUNDS * HOLD * 1e9
    assert s.wait_total_ns == pytest.approx(expected_wait_ns, rel=0.2)
    assert s.avg_hold_ns == pytest.approx(HOLD * 1e9, rel=0.2)
    assert s.hold_max_ns >= HOLD * 1e9
    assert len(s.longest_waits) == 5
    assert s.longest_waits[0].stack[0].function.endswith("worker")
    [finding] = locks.findings([s])
    assert finding.rule == "locks.contended"
    assert finding.measured == pytest.approx(HOLD * 1e3 / 2, rel=0.2)  # half the acquisitions waited
    assert finding.threshold == 1.0
    assert finding.location is not None and finding.location.file == __file__  # the creation site


def test_creation_site_names_the_lock_and_is_the_finding_location() -> None:
    registry = LockRegistry()
    lock = InstrumentedLock(registry=registry)
    line = _line() - 1  # the line above
    _fight(lock, rounds=3)
    [s] = registry.stats()
    assert s.name == f"{__file__}:{line}"
    [finding] = locks.findings([s])
    assert finding.location is not None and finding.location.line == line
    assert finding.location.file == __file__


def _line() -> int:
    import sys

    return sys._getframe(1).f_lineno


def test_uncontended_lock_is_counted_but_not_reported() -> None:
    registry = LockRegistry()
    lock = InstrumentedLock("calm", registry=registry)
    for _ in range(1000):
        with lock:
            pass
    [s] = registry.stats()
    assert (s.acquisitions, s.contended, s.wait_total_ns, s.holds) == (1000, 0, 0, 1000)
    assert locks.findings([s]) == []


def test_threshold_is_configurable_and_checked() -> None:
    stats = LockStats("x", "Lock", 1, 10, 5, 0, 15_000_000, 4_000_000, 10, 1, 1)  # avg 1.5 ms
    assert len(locks.findings([stats])) == 1
    assert locks.findings([stats], avg_wait="2ms") == []
    assert len(locks.findings([stats], avg_wait=0.0014)) == 1
    with pytest.raises(InvalidArgument):
        locks.findings([stats], avg_wait="fast")
    with pytest.raises(InvalidArgument):
        locks.findings([stats], avg_wait=-1)


def test_lock_behaviour_is_unchanged() -> None:
    lock = InstrumentedLock(registry=LockRegistry())
    assert lock.acquire()
    assert lock.locked()
    assert lock.acquire(blocking=False) is False
    start = time.perf_counter()
    assert lock.acquire(timeout=0.05) is False
    assert time.perf_counter() - start >= 0.04
    with pytest.raises(ValueError):
        lock.acquire(False, 1.0)
    released = threading.Thread(target=lock.release)  # a Lock may be released by another thread
    released.start()
    released.join()
    assert not lock.locked()
    with pytest.raises(RuntimeError):
        lock.release()


def test_rlock_reentrancy_and_ownership() -> None:
    registry = LockRegistry()
    rlock = InstrumentedRLock("r", registry=registry)
    with rlock:
        with rlock:
            assert rlock._is_owned()
        result: list[bool] = []
        t = threading.Thread(target=lambda: result.append(rlock.acquire(timeout=0.01)))
        t.start()
        t.join()
        assert result == [False]
    assert not rlock.locked()
    with pytest.raises(RuntimeError):
        rlock.release()
    [s] = registry.stats()
    assert s.acquisitions == 1 and s.holds == 1 and s.failed == 1


@pytest.mark.parametrize("make", [InstrumentedLock, InstrumentedRLock])
def test_condition_wait_notify_with_instrumented_lock(make: type) -> None:
    registry = LockRegistry()
    cond = InstrumentedCondition(make("c", registry=registry))
    items: list[int] = []

    def consumer() -> None:
        with cond:
            while not items:
                cond.wait()
            items.append(items[0] + 1)

    t = threading.Thread(target=consumer)
    t.start()
    time.sleep(0.02)
    with cond:
        items.append(1)
        cond.notify()
    t.join(5)
    assert items == [1, 2]
    with cond:
        assert cond.wait(timeout=0.01) is False
    [s] = registry.stats()
    assert s.acquisitions >= 3


def test_semaphores() -> None:
    registry = LockRegistry()
    sem = InstrumentedSemaphore(2, name="s", registry=registry)
    assert sem.acquire() and sem.acquire()
    assert sem.acquire(blocking=False) is False
    assert sem.acquire(timeout=0.01) is False
    threading.Timer(0.03, sem.release).start()
    with sem:
        pass
    sem.release()
    bounded = InstrumentedBoundedSemaphore(1, registry=registry)
    with bounded:
        pass
    with pytest.raises(ValueError):
        bounded.release()
    stats = {s.name: s for s in registry.stats()}
    s = stats["s"]
    assert s.acquisitions == 3 and s.contended == 1 and s.failed == 2
    assert s.wait_total_ns == pytest.approx(0.03e9, rel=0.5)


def test_asyncio_lock_counts_waits() -> None:
    registry = LockRegistry()

    async def main() -> None:
        lock = locks.InstrumentedAsyncioLock(name="a", registry=registry)

        async def holder() -> None:
            async with lock:
                await asyncio.sleep(0.03)

        await asyncio.gather(holder(), holder())

    asyncio.run(main())
    [s] = registry.stats()
    assert s.acquisitions == 2 and s.contended == 1
    assert s.wait_total_ns == pytest.approx(0.03e9, rel=0.3)
    assert s.holds == 2


def _threaded_sum(n_threads: int = 4, n: int = 2000) -> tuple[int, list[int]]:
    """A threaded program whose result depends on its locks working."""
    lock = threading.Lock()
    rlock = threading.RLock()
    cond = threading.Condition()
    total = [0]
    order: list[int] = []

    def work(k: int) -> None:
        for _ in range(n):
            with lock:
                total[0] += 1
            with rlock, rlock:
                pass
        with cond:
            order.append(k)
            cond.notify_all()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    with cond:
        cond.wait_for(lambda: len(order) == n_threads, timeout=10)
    for t in threads:
        t.join()
    return total[0], sorted(order)


def test_track_instruments_new_locks_without_changing_results() -> None:
    plain = _threaded_sum()
    with locks.track() as tracker:
        assert threading.Lock is not type(threading._allocate_lock())  # type: ignore[attr-defined]
        tracked = _threaded_sum()

        async def use_asyncio_lock() -> str:
            lock = asyncio.Lock()
            async with lock:
                return type(lock).__name__

        kind = asyncio.run(use_asyncio_lock())
        q: queue.Queue[int] = queue.Queue(maxsize=2)  # Conditions over an instrumented Lock
        producer = threading.Thread(target=lambda: [q.put(i) for i in range(100)])
        producer.start()
        received = [q.get(timeout=5) for _ in range(100)]
        producer.join()
        with ThreadPoolExecutor(3) as pool:
            squares = list(pool.map(lambda x: x * x, range(50)))

        class Subclassed(threading.Condition):  # the patched names are still classes
            pass

        assert isinstance(Subclassed(), threading.Condition)
    assert received == list(range(100)) and squares == [x * x for x in range(50)]
    assert tracked == plain == (8000, [0, 1, 2, 3])
    assert kind == "InstrumentedAsyncioLock"
    assert isinstance(threading.Lock(), type(threading._allocate_lock()))  # type: ignore[attr-defined]
    stats = tracker.stats()
    kinds = {s.kind for s in stats}
    assert {"Lock", "RLock", "asyncio.Lock"} <= kinds
    counter_lock = next(s for s in stats if s.kind == "Lock" and s.acquisitions >= 8000)
    assert counter_lock.site is not None and counter_lock.site.file == __file__
    assert counter_lock.site.function == "_threaded_sum"


def test_track_refuses_nesting() -> None:
    with locks.track(), pytest.raises(ValueError), locks.track():
        pass


def test_stats_round_trip_through_dict() -> None:
    registry = LockRegistry()
    lock = InstrumentedLock("rt", registry=registry)
    _fight(lock, rounds=2, hold=0.005)
    [s] = registry.stats()
    assert LockStats.from_dict(s.to_dict()) == s
