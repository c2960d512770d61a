"""Threads: per-thread attribution, names, threads born and dying during a profile, and per-thread
CPU totals under GIL contention."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import workloads
from aether_perf.model import Profile
from workloads import (
    CpuThread,
    alpha_work,
    beta_work,
    functions_of_thread,
    samples_with,
    samples_with_leaf,
    short_lived_work,
    spin_for,
    summary,
    weight,
)

from aether_native import Sampler


def functions_of_threads(profile: Profile, tids: set[int]) -> set[str]:
    return set().union(*(functions_of_thread(profile, tid) for tid in tids))


def _join(*threads: CpuThread) -> None:
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive(), f"{thread.name} did not finish"
        assert thread.error is None, thread.error


def _gated(target, seconds: float, gate: threading.Event):  # type: ignore[no-untyped-def]
    def run() -> None:
        gate.wait(10)
        target(seconds)

    return run


@pytest.mark.parametrize("mode", ["cpu", "wall"])
def test_two_threads_are_attributed_to_their_ids_and_names(mode: str) -> None:
    """alpha runs alpha_work, beta runs beta_work: each function shows only in its own thread's
    samples, under that thread's native id and name, with about that thread's CPU time (cpu mode)."""
    gate = threading.Event()
    alpha = CpuThread(_gated(alpha_work, 0.4, gate), name="alpha")
    beta = CpuThread(_gated(beta_work, 0.25, gate), name="beta")
    alpha.start()
    beta.start()
    with Sampler("1ms", mode) as sampler:
        gate.set()
        _join(alpha, beta)
    profile = sampler.profile
    assert profile is not None
    assert alpha.native_id is not None and beta.native_id is not None
    for thread, mine, other in ((alpha, "alpha_work", "beta_work"), (beta, "beta_work", "alpha_work")):
        tid = thread.native_id
        assert tid in profile.threads, f"{thread.name} ({tid}) not in {profile.threads}"
        assert profile.threads[tid].tid == tid
        assert profile.threads[tid].name == thread.name
        functions = functions_of_thread(profile, tid)
        assert mine in functions, summary(profile, profile.tid == tid)
        assert other not in functions
        # The function is nowhere else.
        elsewhere = samples_with(profile, mine) & (profile.tid != tid)
        assert not elsewhere.any(), f"{mine} sampled on threads {set(profile.tid[elsewhere].tolist())}"
        in_mine = samples_with_leaf(profile, mine) & (profile.tid == tid)
        if mode == "cpu":
            assert weight(profile, in_mine) == pytest.approx(thread.cpu * 1e9, rel=0.10), summary(
                profile, profile.tid == tid
            )
        else:
            assert weight(profile, in_mine) >= thread.cpu * 1e9 * 0.9
    main = threading.main_thread().native_id
    if main in profile.threads:
        assert profile.threads[main].name == "MainThread"


def test_thread_started_after_start_is_sampled_from_birth() -> None:
    sampler = Sampler("1ms", "cpu").start()
    try:
        time.sleep(0.03)
        late = CpuThread(beta_work, 0.3, name="late-starter")
        late.start()
        _join(late)
    finally:
        profile = sampler.stop()
    tid = late.native_id
    assert tid in profile.threads and profile.threads[tid].name == "late-starter"
    mine = profile.tid == tid
    assert weight(profile, mine & samples_with_leaf(profile, "beta_work")) == pytest.approx(
        late.cpu * 1e9, rel=0.10
    ), summary(profile, mine)
    # Its samples start after the profile did (it was born later).
    assert profile.time_ns[mine].min() >= 0.02e9


def test_thread_exiting_mid_profile_is_recorded_to_its_exit_and_sampling_continues() -> None:
    sampler = Sampler("1ms", "cpu").start()
    try:
        brief = CpuThread(short_lived_work, 0.2, name="brief")
        brief.start()
        _join(brief)
        c0 = time.thread_time()
        spin_for(0.3)
        after_cpu = time.thread_time() - c0
    finally:
        profile = sampler.stop()
    tid = brief.native_id
    mine = profile.tid == tid
    assert tid in profile.threads and profile.threads[tid].name == "brief"
    # Recorded up to its exit: its CPU time is all there.
    assert weight(profile, mine) == pytest.approx(brief.cpu * 1e9, rel=0.10), summary(profile, mine)
    # Sampling continued after it was gone: the main thread's spin after the join is all there, in
    # samples later than the brief thread's last one.
    main = threading.main_thread().native_id
    last_brief = int(profile.time_ns[mine].max())
    later = (profile.tid == main) & samples_with_leaf(profile, "spin_for") & (profile.time_ns > last_brief)
    assert weight(profile, later) == pytest.approx(after_cpu * 1e9, rel=0.10), summary(profile)
    counters = profile.meta.extra["sampler"]
    assert counters["threads_seen"] >= 2
    assert profile.meta.dropped == 0


def test_many_short_lived_threads_are_all_accounted() -> None:
    """40 threads, two at a time, each burning 25 ms of CPU: their summed weight matches their
    summed CPU time (threads found by the periodic /proc scan count from birth), and every one of
    them is in the profile under its own id."""
    threads: list[CpuThread] = []
    with Sampler("1ms", "cpu") as sampler:
        for i in range(0, 40, 2):
            pair = [CpuThread(short_lived_work, 0.025, name=f"short-{i + k}") for k in range(2)]
            for thread in pair:
                thread.start()
            _join(*pair)
            threads.extend(pair)
    profile = sampler.profile
    assert profile is not None
    tids = {t.native_id for t in threads}
    assert len(tids) == 40
    sampled = set(np.unique(profile.tid).tolist())
    missing = tids - sampled
    assert not missing, f"{len(missing)} of 40 threads never sampled"
    ours = np.isin(profile.tid, list(tids))
    cpu = sum(t.cpu for t in threads)
    assert weight(profile, ours) == pytest.approx(cpu * 1e9, rel=0.10), summary(profile, ours)
    # Their time is in the function they ran, and no other workload function shows up in them.
    selfw = workloads.self_weights(profile, ours)
    assert selfw.get("short_lived_work", 0.0) > 0.9 * weight(profile, ours), summary(profile, ours)
    assert not {"alpha_work", "beta_work", "spin_for"} & functions_of_threads(profile, tids)


def test_gil_contention_two_threads_cpu_totals() -> None:
    """Two CPU-bound threads contending for the GIL: each thread's summed weight is within 10% of
    its own time.thread_time(), and the total within 10% of their sum."""
    gate = threading.Event()
    one = CpuThread(_gated(alpha_work, 0.5, gate), name="contender-1")
    two = CpuThread(_gated(beta_work, 0.5, gate), name="contender-2")
    one.start()
    two.start()
    sampler = Sampler("1ms", "cpu").start()
    gate.set()
    _join(one, two)
    profile: Profile = sampler.stop()
    for thread in (one, two):
        got = weight(profile, profile.tid == thread.native_id)
        assert got == pytest.approx(thread.cpu * 1e9, rel=0.10), (
            f"{thread.name}: weight {got / 1e9:.3f}s, thread_time {thread.cpu:.3f}s; "
            + summary(profile, profile.tid == thread.native_id)
        )
    both = np.isin(profile.tid, [one.native_id, two.native_id])
    assert weight(profile, both) == pytest.approx((one.cpu + two.cpu) * 1e9, rel=0.10)
