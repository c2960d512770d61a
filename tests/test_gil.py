"""GIL contention from wall-mode samples: CPU-bound threads wait, a sleeping thread does not."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest
from aether_perf.analysis import gil
from aether_perf.errors import InvalidArgument
from aether_perf.model import (
    FLAG_BLOCKED,
    FLAG_GIL_WAIT,
    FLAG_HOLDS_GIL,
    FLAG_IDLE,
    Frame,
    Profile,
    ProfileMeta,
    ThreadInfo,
)

from aether_native import Sampler


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += 1


SLEEP = 0.8


def _sleeper(marks: dict[str, float]) -> None:
    marks["running"] = time.perf_counter()
    time.sleep(SLEEP)
    marks["woke"] = time.perf_counter()


def test_two_cpu_bound_threads_wait_half_the_time_and_a_sleeper_does_not() -> None:
    sampler = Sampler(interval=0.001, mode="wall")
    marks: dict[str, float] = {}
    sampler.start()
    threads = [threading.Thread(target=_spin, args=(1.0,), name=f"cpu-{i}") for i in range(2)]
    for t in threads:
        t.start()
    # One long sleep: it released the GIL and wants it back only at the end.
    sleeper = threading.Thread(target=_sleeper, args=(marks,), name="sleeper")
    marks["start"] = time.perf_counter()
    sleeper.start()
    threads.append(sleeper)
    tids = {t.name: t.native_id for t in threads}
    tids["MainThread"] = threading.get_native_id()
    for t in threads:
        t.join()
    profile = sampler.stop()
    by_tid = {t.tid: t for t in gil.gil_contention(profile)}
    by_name = {name: by_tid[tid] for name, tid in tids.items()}
    for name in ("cpu-0", "cpu-1"):
        t = by_name[name]
        assert t.total_ns == pytest.approx(1e9, rel=0.2)
        # Two threads that each want the GIL all the time hold it about half the time each;
        # the other half is the wait, as measured.
        assert t.hold_share == pytest.approx(0.5, abs=0.1)
        assert t.wait_share == pytest.approx(0.5, rel=0.2)
        assert t.blocked_on_gil_ns > 0.05 * t.total_ns  # seen blocked on the GIL itself
        assert t.top_wait is not None and t.top_wait.function == "_spin"
    s = by_name["sleeper"]
    # The sleep itself is not a GIL wait; what it waited for the GIL (to start, and to return
    # from the sleep) is measured by the thread itself.
    assert s.blocked_other_ns >= 0.75 * SLEEP * 1e9
    true_wait_ns = ((marks["running"] - marks["start"]) + (marks["woke"] - marks["running"] - SLEEP)) * 1e9
    # The sampler finds a new thread within its 10 ms scan (so up to that much of the wait to
    # start is not seen), and a signalled sleep returns EINTR and takes the GIL back (a wait that
    # sampling causes: usually once, rarely a few times).
    assert true_wait_ns - 0.03e9 <= s.waiting_ns <= true_wait_ns + 0.2e9
    assert s.wait_share < 0.5 * min(by_name["cpu-0"].wait_share, by_name["cpu-1"].wait_share)
    flagged = {f.evidence["tid"] for f in gil.findings(profile)}
    assert by_name["cpu-0"].tid in flagged and by_name["cpu-1"].tid in flagged
    assert by_name["MainThread"].tid not in flagged  # joining: blocked on a lock, not the GIL


def _profile(flags: list[int], weights: list[int], mode: str = "wall") -> Profile:
    n = len(flags)
    return Profile(
        frames=[Frame("f", "x.py", 3, 1)],
        stacks=[(0,)],
        stack=np.zeros(n, dtype=np.int32),
        tid=np.full(n, 7),
        time_ns=np.arange(n),
        weight_ns=weights,
        flags=flags,
        threads={7: ThreadInfo(7, "worker")},
        meta=ProfileMeta(mode, 0.001, 0.0, 1.0, sys.version.split()[0], n, 0),
    )


def test_rule_both_sides_on_synthetic_samples() -> None:
    ms = 1_000_000
    blocked_gil = FLAG_IDLE | FLAG_BLOCKED | FLAG_GIL_WAIT
    # 60 ms holding, 20 ms blocked on the GIL, 5 ms on CPU without it, 15 ms asleep: 25% waiting
    profile = _profile(
        [FLAG_HOLDS_GIL, blocked_gil, 0, FLAG_IDLE | FLAG_BLOCKED], [60 * ms, 20 * ms, 5 * ms, 15 * ms]
    )
    [t] = gil.gil_contention(profile)
    assert (t.holding_ns, t.blocked_on_gil_ns, t.running_unlocked_ns, t.blocked_other_ns) == (
        60 * ms,
        20 * ms,
        5 * ms,
        15 * ms,
    )
    assert t.wait_share == pytest.approx(0.25)
    assert gil.findings(profile) == []  # at the threshold: not over
    [f] = gil.findings(profile, max_wait_share=0.2)
    assert f.rule == "gil.contention" and f.measured == pytest.approx(25.0)
    assert f.location is not None and (f.location.file, f.location.line) == ("x.py", 3)
    assert gil.findings(profile, max_wait_share=0.2, min_wall=0.2) == []


def test_profiles_that_cannot_tell_are_not_evaluated() -> None:
    cpu = _profile([FLAG_HOLDS_GIL], [1000], mode="cpu")
    [f] = gil.findings(cpu)
    assert not f.evaluated and "wall" in f.message
    old = _profile([FLAG_IDLE, FLAG_HOLDS_GIL], [1000, 1000])  # idle but never marked blocked
    [f] = gil.findings(old)
    assert not f.evaluated
    with pytest.raises(InvalidArgument):
        gil.gil_contention(cpu)
    with pytest.raises(InvalidArgument):
        gil.findings(old, max_wait_share=2)
