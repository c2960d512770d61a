"""AllocationTracker (csrc/alloc.c + HeapSession): ground truth on a known workload (issue 4, scaled
down), exact and sampled modes, totals, threads, running beside the Sampler, bad input."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest
from aether_perf.errors import InvalidArgument, SamplerBusyError, SamplerStateError

from aether_native import Sampler, _core
from aether_native.memory import AllocationTracker

LEAKS = 10_000
LEAK_SIZE = 1024
CHURN = 200_000
BUFFERS = 200
MIB = 1 << 20
#: The true size of the leak: 10,000 distinct bytes objects of 1 KiB (about 10.6 MB).
LEAK_BYTES = LEAKS * sys.getsizeof(b"x" * LEAK_SIZE)


def leak_it(keep: list[object], size: int = LEAK_SIZE) -> None:
    for i in range(len(keep)):
        keep[i] = b"x" * size  # `size` is a variable: no constant folding, each object is new


def churn(n: int = CHURN) -> None:
    for i in range(n):
        t = (i, str(i))
        del t


def big_buffers(n: int = BUFFERS) -> None:
    for _ in range(n):
        b = bytearray(MIB)
        del b


def workload() -> list[object]:
    keep: list[object] = [None] * LEAKS  # sized up front: the list's buffer is not part of the leak
    churn()
    leak_it(keep)
    big_buffers()
    return keep


def rows_under(
    frames: list[tuple[str, str, int, int]], stacks: list[tuple[int, ...]], stack: np.ndarray, name: str
) -> np.ndarray:
    wanted = {i for i, f in enumerate(frames) if f[0] == name}
    hit = np.array([bool(wanted.intersection(s)) for s in stacks], dtype=bool)
    return hit[stack] if len(stack) else np.zeros(0, dtype=bool)


@pytest.fixture(scope="module")
def exact_run() -> tuple[AllocationTracker, list[object]]:
    tracker = AllocationTracker(mode="exact")
    with tracker:
        keep = workload()
    return tracker, keep


@pytest.fixture(scope="module")
def sampled_run() -> tuple[AllocationTracker, list[object]]:
    # ~320 expected samples over the 10.6 MB leak: ~6% relative error, so 25% is > 4 sigma.
    tracker = AllocationTracker(mode="sampled", sample_rate="32KiB")
    with tracker:
        keep = workload()
    return tracker, keep


# -- exact mode -------------------------------------------------------------------------------------


def test_exact_leak_within_one_percent(exact_run: tuple[AllocationTracker, list[object]]) -> None:
    tracker, _keep = exact_run
    frames, stacks, cols = tracker.raw_snapshot()
    under = rows_under(frames, stacks, cols["stack"], "leak_it")
    assert int(under.sum()) >= LEAKS
    assert abs(int(cols["bytes"][under].sum()) - LEAK_BYTES) <= 0.01 * LEAK_BYTES
    assert np.all(cols["count"] == 1.0)
    assert np.array_equal(cols["bytes"], cols["size"])


def test_exact_totals_match_live_blocks(exact_run: tuple[AllocationTracker, list[object]]) -> None:
    tracker, _keep = exact_run
    stats = tracker.statistics()
    _frames, _stacks, cols = tracker.raw_snapshot()
    live = int(cols["size"].sum())
    assert stats["allocated_bytes"] - stats["freed_bytes"] == stats["current_bytes"] == live
    assert stats["allocations"] - stats["frees"] == stats["live_blocks"] == len(cols["size"])
    assert stats["peak_bytes"] >= stats["current_bytes"] + MIB  # a 1 MiB buffer was live on top
    # every allocation got a stack in exact mode
    assert stats["sampled_allocations"] == stats["allocations"]


def test_exact_counts_the_big_buffers(exact_run: tuple[AllocationTracker, list[object]]) -> None:
    tracker, _keep = exact_run
    stats = tracker.statistics()
    # churn + leak + 200 x 1 MiB: the buffers alone are 200 MiB allocated and freed
    assert stats["allocations"] >= CHURN + LEAKS + BUFFERS
    assert stats["allocated_bytes"] >= BUFFERS * MIB + LEAK_BYTES
    assert stats["freed_bytes"] >= BUFFERS * MIB
    _frames, _stacks, cols = tracker.raw_snapshot()
    assert not np.any(cols["size"] >= MIB)  # all freed


def test_large_block_is_live_while_held() -> None:
    with AllocationTracker() as tracker:
        buffer = bytearray(MIB)
        frames, stacks, cols = tracker.raw_snapshot()
        del buffer
    big = cols["size"] > 1024
    assert np.any(cols["size"][big] >= MIB)
    here = rows_under(frames, stacks, cols["stack"], "test_large_block_is_live_while_held")
    assert np.any(cols["size"][here] >= MIB)


def test_snapshot_after_stop_is_the_state_at_stop(exact_run: tuple[AllocationTracker, list[object]]) -> None:
    tracker, _keep = exact_run
    a = tracker.raw_snapshot()[2]["size"].sum()
    garbage = [bytearray(1000) for _ in range(100)]
    assert tracker.raw_snapshot()[2]["size"].sum() == a
    del garbage


def test_hot_spots_rank_leak_first(exact_run: tuple[AllocationTracker, list[object]]) -> None:
    tracker, _keep = exact_run
    pytest.importorskip("aether_perf.model.heap")
    snap = tracker.snapshot()
    top = snap.hot_spots(1)[0]
    assert top.frames[-1].function == "leak_it"
    assert abs(top.bytes - LEAK_BYTES) <= 0.01 * LEAK_BYTES
    assert snap.meta.mode == "exact" and snap.meta.current_bytes == int(snap.size.sum())


# -- sampled mode -----------------------------------------------------------------------------------


def test_sampled_leak_within_25_percent(sampled_run: tuple[AllocationTracker, list[object]]) -> None:
    tracker, _keep = sampled_run
    frames, stacks, cols = tracker.raw_snapshot()
    under = rows_under(frames, stacks, cols["stack"], "leak_it")
    estimate = float(cols["bytes"][under].sum())
    assert abs(estimate - LEAK_BYTES) <= 0.25 * LEAK_BYTES
    assert 0 < under.sum() < LEAKS  # sampled, not every block
    assert np.all(cols["count"] >= 1.0)


def test_sampled_totals_are_exact(
    sampled_run: tuple[AllocationTracker, list[object]], exact_run: tuple[AllocationTracker, list[object]]
) -> None:
    stats = sampled_run[0].statistics()
    exact = exact_run[0].statistics()
    assert stats["allocated_bytes"] - stats["freed_bytes"] == stats["current_bytes"]
    assert stats["allocations"] - stats["frees"] == stats["live_blocks"]
    assert stats["sampled_allocations"] < stats["allocations"] / 10
    # the same workload: the counts agree up to interpreter noise, with no sampling error
    assert abs(stats["allocations"] - exact["allocations"]) <= 0.02 * exact["allocations"]
    assert abs(stats["allocated_bytes"] - exact["allocated_bytes"]) <= 0.02 * exact["allocated_bytes"]
    assert stats["current_bytes"] >= LEAK_BYTES


def test_sampled_hot_spots(sampled_run: tuple[AllocationTracker, list[object]]) -> None:
    pytest.importorskip("aether_perf.model.heap")
    snap = sampled_run[0].snapshot()
    assert snap.meta.mode == "sampled" and snap.meta.sample_rate == 32 * 1024
    assert snap.hot_spots(1)[0].frames[-1].function == "leak_it"


# -- threads, coexistence ---------------------------------------------------------------------------


def test_threads_attributed_to_their_tid() -> None:
    keeps: dict[int, list[object]] = {}

    def worker() -> None:
        keep: list[object] = [None] * 2000
        leak_it(keep)
        keeps[threading.get_native_id()] = keep

    with AllocationTracker() as tracker:
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    frames, stacks, cols = tracker.raw_snapshot()
    under = rows_under(frames, stacks, cols["stack"], "leak_it")
    tids = cols["tid"][under]
    assert set(np.unique(tids).tolist()) == set(keeps)
    for tid in keeps:
        assert int((tids == tid).sum()) == 2000


def test_runs_beside_the_sampler() -> None:
    keep: list[object] = [None] * 2000
    with Sampler(interval="1ms") as sampler, AllocationTracker() as tracker:
        leak_it(keep)
        churn(20_000)
    frames, stacks, cols = tracker.raw_snapshot()
    assert int(rows_under(frames, stacks, cols["stack"], "leak_it").sum()) == 2000
    assert sampler.profile is not None


def test_restart_and_nested_tracker_errors() -> None:
    first = AllocationTracker().start()
    try:
        with pytest.raises(SamplerBusyError):
            AllocationTracker(mode="sampled").start()
        with pytest.raises(SamplerBusyError):
            first.start()
    finally:
        first.stop()
    with pytest.raises(SamplerStateError):
        first.stop()
    with AllocationTracker() as again:  # the C core is reusable
        x = [bytearray(100) for _ in range(10)]
    assert again.statistics()["allocations"] >= 10
    del x
    assert not _core.alloc_running()


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["bogus", "", "EXACT", None, 1])
def test_bad_mode(mode: object) -> None:
    with pytest.raises(InvalidArgument, match="mode"):
        AllocationTracker(mode=mode)  # type: ignore[arg-type]


@pytest.mark.parametrize("rate", ["lots", "12 parsecs", "-1KiB", 0, "0B", 1.5, True])
def test_bad_sample_rate(rate: object) -> None:
    with pytest.raises(InvalidArgument, match="sample_rate"):
        AllocationTracker(mode="sampled", sample_rate=rate)  # type: ignore[arg-type]


@pytest.mark.parametrize("depth", [0, -1, 10_000, "8", True])
def test_bad_max_depth(depth: object) -> None:
    with pytest.raises(InvalidArgument, match="max_depth"):
        AllocationTracker(max_depth=depth)  # type: ignore[arg-type]


def test_calls_before_start() -> None:
    tracker = AllocationTracker()
    with pytest.raises(SamplerStateError):
        tracker.snapshot()
    with pytest.raises(SamplerStateError):
        tracker.raw_snapshot()
    with pytest.raises(SamplerStateError):
        tracker.statistics()
    with pytest.raises(SamplerStateError):
        tracker.stop()


def test_thread_totals_sum_to_the_totals(
    exact_run: tuple[AllocationTracker, list[object]], sampled_run: tuple[AllocationTracker, list[object]]
) -> None:
    for tracker, _keep in (exact_run, sampled_run):
        stats = tracker.statistics()
        per = tracker.thread_statistics()
        assert stats["threads"] == len(per) >= 1
        for key in ("allocated_bytes", "allocations", "freed_bytes", "frees"):
            assert sum(row[key] for row in per.values()) == stats[key], (tracker.mode, key)
        # the workload ran on this thread: the leak and the buffers are its allocations
        assert per[threading.get_native_id()]["allocated_bytes"] >= BUFFERS * MIB + LEAK_BYTES
