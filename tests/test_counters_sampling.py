"""Counter-triggered sampling: Sampler(trigger=EVENT, period=N) samples a thread's Python stack
every N events through the perf event's overflow signal (software events here, so the signal path
runs on machines without a PMU).

Ground truth: `touch` faults in a known number of fresh pages and `spin` burns a known amount of
CPU while touching none; page-fault samples must all land in `touch` and add up to the pages it
touched, task-clock samples must split the CPU time as the two functions used it.
"""

from __future__ import annotations

import mmap
import threading
import time

import pytest
from aether_perf.analysis import top_functions
from aether_perf.errors import CounterUnavailable, InvalidArgument
from aether_perf.model import Profile

from aether_native import Sampler, _core

PAGE = mmap.PAGESIZE


def touch(pages: int) -> None:
    region = mmap.mmap(-1, pages * PAGE)
    region.madvise(mmap.MADV_NOHUGEPAGE)  # one fault per page even where THP is "always"
    for offset in range(0, pages * PAGE, PAGE):
        region[offset] = 1
    region.close()


def spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


def shares(profile: Profile) -> dict[str, int]:
    return {stat.function: stat.self_ns for stat in top_functions(profile)}


def test_page_fault_samples_land_where_the_pages_are_touched() -> None:
    rounds, pages, period = 8, 500, 10
    with Sampler(trigger="page-faults", period=period) as sampler:
        for _ in range(rounds):
            touch(pages)
            spin(0.01)
    profile = sampler.profile
    assert profile is not None
    assert profile.meta.mode == "events"
    assert profile.meta.extra["trigger"] == {"event": "page-faults", "period": period, "unit": "events"}
    weights = shares(profile)
    total = int(profile.weight_ns.sum())
    # every touched page faults once; the Python runtime itself may fault a few more times
    assert weights.get("touch", 0) >= 0.95 * rounds * pages
    assert weights.get("touch", 0) >= 0.9 * total
    assert weights.get("spin", 0) <= 0.05 * total


def test_task_clock_samples_split_cpu_time_by_function() -> None:
    with Sampler(trigger="task-clock", period=1_000_000) as sampler:  # every 1 ms of CPU
        for _ in range(10):
            spin(0.02)
            spin_short = time.thread_time() + 0.005
            while time.thread_time() < spin_short:
                pass
    profile = sampler.profile
    assert profile is not None and profile.meta.mode == "cpu"
    weights = shares(profile)
    spent = weights.get("spin", 0)
    whole = int(profile.weight_ns.sum())
    assert whole >= 0.2e9  # 250 ms of CPU at 1 ms per sample
    assert 0.7 <= spent / whole <= 0.9  # 200 of 250 ms


def test_threads_started_later_get_their_own_events() -> None:
    done: list[int] = []
    seen = threading.Event()

    def worker() -> None:
        done.append(threading.get_native_id())
        seen.wait(10)
        touch(1000)

    with Sampler(trigger="page-faults", period=20) as sampler:
        before = _core.stats()["threads_seen"]
        thread = threading.Thread(target=worker)
        thread.start()
        # new threads are found by a /proc/self/task scan every 10 ms (later on a loaded machine)
        deadline = time.monotonic() + 10
        while _core.stats()["threads_seen"] == before and time.monotonic() < deadline:
            time.sleep(0.005)
        seen.set()
        thread.join()
    profile = sampler.profile
    assert profile is not None
    rows = profile.tid == done[0]
    assert int(profile.weight_ns[rows].sum()) >= 0.95 * 1000
    assert {stat.function for stat in top_functions(profile.filter(thread=done[0])) if stat.self_ns} == {
        "touch"
    }


def test_unavailable_trigger_names_why() -> None:
    if _core.counter_probe(0, 3) == 0:
        pytest.skip("this machine has a PMU: cache-misses can be sampled")
    with pytest.raises(CounterUnavailable, match="cannot sample on cache-misses: ENOENT"):
        Sampler(trigger="cache-misses", period=10000).start()
    # and the machinery is free again afterwards
    with Sampler(interval="1ms") as sampler:
        spin(0.01)
    assert sampler.profile is not None


def test_bad_trigger_arguments() -> None:
    with pytest.raises(InvalidArgument, match="unknown event"):
        Sampler(trigger="cache-mises", period=10)
    with pytest.raises(InvalidArgument, match="period"):
        Sampler(trigger="page-faults", period=0)
    with pytest.raises(InvalidArgument, match="period needs a trigger"):
        Sampler(period=10)
    with pytest.raises(InvalidArgument, match="mode does not apply"):
        Sampler(trigger="page-faults", period=10, mode="wall")


def test_timer_sampling_still_works_after_a_trigger_session() -> None:
    with Sampler(trigger="task-clock", period=500_000) as first:
        spin(0.02)
    with Sampler(interval="1ms") as second:
        spin(0.05)
    assert first.profile is not None and second.profile is not None
    assert shares(second.profile).get("spin", 0) >= 0.03e9
