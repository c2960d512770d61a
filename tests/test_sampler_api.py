"""Sampler API and lifecycle: bad input, state errors, restart, context manager, cross-thread stop,
exit with a sampler running, stack depth limits, drop accounting."""

from __future__ import annotations

import json
import math
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import workloads
from aether_perf.errors import AetherError, InvalidArgument, SamplerBusyError, SamplerStateError
from aether_perf.model import FLAG_TRUNCATED, Profile
from workloads import recurse, spin_for

import aether_native
from aether_native import Sampler

# -- bad input ------------------------------------------------------------------------------------

RANGE_AND_UNITS = ("50us", "1s")


@pytest.mark.parametrize(
    "interval",
    [
        0,
        0.0,
        -1,
        -0.001,
        "0ms",
        "-1ms",
        "10us",
        "49us",
        1e-5,
        4.9e-5,
        "2s",
        1.5,
        3600,
        "fast",
        "",
        "1 parsec",
        "ms",
        "1ms 2ms",
        True,
        False,
        float("nan"),
        "nan",
        float("inf"),
        "-inf",
        None,
        [1],
    ],
    ids=repr,
)
def test_bad_interval_raises_invalid_argument_naming_range_and_units(interval: object) -> None:
    with pytest.raises(InvalidArgument) as info:
        Sampler(interval)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, AetherError)
    message = str(info.value)
    assert "interval" in message
    for bound in RANGE_AND_UNITS:
        assert bound in message, f"message does not name the accepted range: {message!r}"


@pytest.mark.parametrize(
    ("interval", "seconds"),
    [
        ("1ms", 1e-3),
        ("250us", 250e-6),
        ("50us", 50e-6),
        ("1s", 1.0),
        (0.001, 1e-3),
        (1, 1.0),
        ("100 us", 1e-4),
    ],
)
def test_good_interval_is_parsed(interval: object, seconds: float) -> None:
    sampler = Sampler(interval)  # type: ignore[arg-type]
    assert math.isclose(sampler.interval, seconds, rel_tol=1e-12)
    assert not sampler.running
    assert sampler.profile is None


@pytest.mark.parametrize("mode", ["CPU", "Wall", "process", "", None, 1, "cpu "], ids=repr)
def test_bad_mode_raises_invalid_argument(mode: object) -> None:
    with pytest.raises(InvalidArgument) as info:
        Sampler("1ms", mode)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert "cpu" in str(info.value) and "wall" in str(info.value)


@pytest.mark.parametrize("max_depth", [0, -1, True, 1.5, "10", 10**6])
def test_bad_max_depth_raises_invalid_argument(max_depth: object) -> None:
    with pytest.raises(InvalidArgument, match="max_depth"):
        Sampler("1ms", max_depth=max_depth)  # type: ignore[arg-type]


@pytest.mark.parametrize("ring_size", ["1KiB", "abc", 0, -5, "1.5B", True])
def test_bad_ring_size_raises_invalid_argument(ring_size: object) -> None:
    with pytest.raises(InvalidArgument, match="ring_size"):
        Sampler("1ms", ring_size=ring_size)  # type: ignore[arg-type]


def test_bad_aether_signal_env_is_rejected_and_leaves_no_state(monkeypatch: pytest.MonkeyPatch) -> None:
    sampler = Sampler("1ms")
    for value in ("SIGNOPE", "9", "SIGSTOP", "999"):
        monkeypatch.setenv("AETHER_SIGNAL", value)
        with pytest.raises(InvalidArgument, match="AETHER_SIGNAL"):
            sampler.start()
        assert not sampler.running
    monkeypatch.delenv("AETHER_SIGNAL")
    sampler.start()
    spin_for(0.05)
    assert len(sampler.stop()) > 0


# -- state errors -----------------------------------------------------------------------------------


def test_stop_without_start_raises_state_error() -> None:
    sampler = Sampler("1ms")
    with pytest.raises(SamplerStateError, match="start"):
        sampler.stop()
    assert isinstance(SamplerStateError("x"), AetherError)


def test_start_twice_raises_state_error_and_keeps_sampling() -> None:
    sampler = Sampler("1ms").start()
    try:
        with pytest.raises(SamplerStateError):
            sampler.start()
        assert sampler.running
        spin_for(0.1)
    finally:
        profile = sampler.stop()
    assert not sampler.running
    assert workloads.weight(profile, workloads.samples_with_leaf(profile, "spin_for")) > 0.05e9
    with pytest.raises(SamplerStateError):
        sampler.stop()


def test_second_concurrent_sampler_is_busy_and_first_keeps_working() -> None:
    first = Sampler("1ms").start()
    try:
        second = Sampler("1ms", "wall")
        with pytest.raises(SamplerBusyError):
            second.start()
        assert not second.running
        with pytest.raises(SamplerStateError):
            second.stop()
        assert first.running
        phase_two(0.15)
    finally:
        profile = first.stop()
    two = workloads.samples_with_leaf(profile, "phase_two")
    # phase_two ran only after the refused start: its samples show the first kept sampling.
    assert workloads.weight(profile, two) > 0.1e9, workloads.summary(profile)
    # And once the first is stopped, the second may start.
    second.start()
    phase_one(0.05)
    assert len(second.stop()) > 0


def phase_one(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        for _ in range(50):
            pass


def phase_two(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        for _ in range(50):
            pass


def _check_consistent(profile: Profile, mode: str, interval: float, wall_seconds: float) -> None:
    n = len(profile.stack)
    assert profile.meta.mode == mode
    assert profile.meta.interval == pytest.approx(interval)
    assert profile.meta.sample_count == n
    for column in (profile.tid, profile.time_ns, profile.weight_ns, profile.flags):
        assert len(column) == n
    assert np.all(profile.stack >= 0) and np.all(profile.stack < len(profile.stacks))
    assert np.all(profile.weight_ns >= 0)
    assert np.all(profile.time_ns >= 0)
    assert profile.time_ns.max() <= profile.meta.duration * 1e9 + 1e6
    assert 0 < profile.meta.duration <= wall_seconds + 0.05
    assert set(np.unique(profile.tid).tolist()) <= set(profile.threads)
    for stack in profile.stacks:
        assert all(0 <= f < len(profile.frames) for f in stack)


@pytest.mark.parametrize("mode", ["cpu", "wall"])
def test_start_stop_start_gives_fresh_profiles(mode: str) -> None:
    sampler = Sampler("1ms", mode)
    t0 = time.perf_counter()
    sampler.start()
    phase_one(0.15)
    first = sampler.stop()
    wall_first = time.perf_counter() - t0
    assert sampler.profile is first

    t0 = time.perf_counter()
    sampler.start()
    assert sampler.running and sampler.profile is None
    phase_two(0.15)
    second = sampler.stop()
    wall_second = time.perf_counter() - t0

    # A new instance after the restarted one works too.
    third_sampler = Sampler("1ms", mode).start()
    phase_one(0.05)
    third = third_sampler.stop()

    _check_consistent(first, mode, 1e-3, wall_first)
    _check_consistent(second, mode, 1e-3, wall_second)
    _check_consistent(third, mode, 1e-3, 10)
    first_functions = {f.function for f in first.frames}
    second_functions = {f.function for f in second.frames}
    assert "phase_one" in first_functions and "phase_two" not in first_functions
    assert "phase_two" in second_functions and "phase_one" not in second_functions, workloads.summary(second)
    assert workloads.weight(second, workloads.samples_with_leaf(second, "phase_two")) > 0.1e9
    assert second.meta.extra["sampler"]["ticks"] < 0.5 / 1e-3, "counters were not reset between sessions"
    assert "phase_one" in {f.function for f in third.frames}


def test_context_manager_sets_profile_and_stops() -> None:
    with Sampler("1ms") as sampler:
        assert sampler.running
        phase_one(0.1)
    assert not sampler.running
    assert isinstance(sampler.profile, Profile)
    assert (
        workloads.weight(sampler.profile, workloads.samples_with_leaf(sampler.profile, "phase_one")) > 0.05e9
    )


def test_context_manager_stops_on_exception() -> None:
    with pytest.raises(ZeroDivisionError):
        with Sampler("1ms") as sampler:
            phase_one(0.05)
            1 / 0  # noqa: B018
    assert not sampler.running
    assert isinstance(sampler.profile, Profile)
    assert len(sampler.profile) > 0
    # The machinery is free again.
    with Sampler("1ms"):
        pass


def test_stop_from_another_thread() -> None:
    sampler = Sampler("1ms").start()
    box: dict[str, object] = {}

    def stopper() -> None:
        time.sleep(0.2)
        try:
            box["profile"] = sampler.stop()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=stopper, name="stopper")
    thread.start()
    deadline = time.perf_counter() + 5
    c0 = time.thread_time()
    while sampler.running and time.perf_counter() < deadline:
        phase_one(0.01)
    cpu = time.thread_time() - c0
    thread.join(5)
    assert not thread.is_alive()
    assert "error" not in box, box.get("error")
    assert not sampler.running
    profile = box["profile"]
    assert profile is sampler.profile
    assert isinstance(profile, Profile)
    main = threading.main_thread().native_id
    sampled = workloads.weight(
        profile, workloads.samples_with_leaf(profile, "phase_one") & (profile.tid == main)
    )
    # The main thread kept running phase_one until it saw the sampler stopped: all of it but the
    # last chunk (10 ms) is in the profile.
    assert cpu * 1e9 - 0.015e9 <= sampled * 1.1 and sampled <= cpu * 1e9 * 1.1, (sampled / 1e9, cpu)


def test_public_names() -> None:
    assert aether_native.Sampler is Sampler
    assert aether_native.SamplerBusyError is SamplerBusyError
    assert aether_native.SamplerStateError is SamplerStateError
    assert aether_native.InvalidArgument is InvalidArgument


# -- exit with a sampler running -------------------------------------------------------------------

EXIT_PROGRAM = textwrap.dedent(
    """
    import os, sys, threading, time
    import aether_native

    how = sys.argv[1]
    mode = sys.argv[2]

    def burn(seconds):
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            for _ in range(50):
                pass

    def forever():
        while True:
            burn(0.01)

    for i in range(2):
        threading.Thread(target=forever, daemon=True, name=f"burner-{i}").start()
    if how == "from-thread":
        threading.Thread(target=lambda: aether_native.Sampler("100us", mode).start(), daemon=True).start()
        time.sleep(0.1)
    else:
        aether_native.Sampler("100us", mode).start()   # no reference kept on purpose
    burn(0.02)
    print("working", flush=True)
    if how == "exit":
        sys.exit(3)
    if how == "raise":
        raise RuntimeError("boom at exit")
    if how == "from-thread":
        sys.exit(5)
    if how == "return":
        pass
    """
)


@pytest.mark.parametrize(
    ("how", "mode", "status"),
    [("exit", "cpu", 3), ("raise", "wall", 1), ("from-thread", "cpu", 5), ("return", "wall", 0)],
)
def test_sampler_running_at_interpreter_exit(tmp_path, how: str, mode: str, status: int) -> None:
    result = workloads.run_script(EXIT_PROGRAM, tmp_path, args=[how, mode], timeout=30)
    assert result.returncode == status, workloads.describe(result)
    assert result.stdout == "working\n"
    assert "Fatal Python error" not in result.stderr, result.stderr
    if how == "raise":
        assert "RuntimeError: boom at exit" in result.stderr
    else:
        assert result.stderr == "", result.stderr


# -- stack depth -----------------------------------------------------------------------------------


def test_max_depth_truncates_to_innermost_frames() -> None:
    shallow = workloads.CpuThread(spin_for, 0.1, name="shallow")
    with Sampler("1ms", max_depth=10) as sampler:
        recurse(100, 0.2)
        shallow.start()
        shallow.join()
    profile = sampler.profile
    assert profile is not None
    lengths = np.array([len(s) for s in profile.stacks])[profile.stack]
    assert lengths.max() <= 10
    bottom = workloads.samples_with_leaf(profile, "recursion_bottom")
    assert workloads.weight(profile, bottom) > 0.15e9, workloads.summary(profile)
    # Samples at the bottom of the recursion: exactly the 10 innermost frames (9 recurse and
    # recursion_bottom), flagged truncated.
    assert np.all(lengths[bottom] == 10)
    assert np.all(profile.flags[bottom] & FLAG_TRUNCATED)
    for index in np.unique(profile.stack[bottom]):
        names = [profile.frames[f].function for f in profile.stacks[index]]
        assert names == ["recurse"] * 9 + ["recursion_bottom"]
    # A thread with a shallow stack (threading's bootstrap frames + spin_for: under 10) is
    # recorded whole and not flagged.
    mine = profile.tid == shallow.native_id
    assert workloads.weight(profile, mine & workloads.samples_with_leaf(profile, "spin_for")) > 0.05e9
    assert np.all(lengths[mine] < 10)
    assert not np.any(profile.flags[mine] & FLAG_TRUNCATED)


def _deep_recursion_profile(depth: int, **kwargs: object) -> Profile:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, depth + 500))
    try:
        with Sampler("1ms", **kwargs) as sampler:  # type: ignore[arg-type]
            recurse(depth, 0.2)
    finally:
        sys.setrecursionlimit(limit)
    assert sampler.profile is not None
    return sampler.profile


def _check_full_deep_stacks(profile: Profile, depth: int) -> None:
    bottom = workloads.samples_with_leaf(profile, "recursion_bottom")
    assert workloads.weight(profile, bottom) > 0.15e9, workloads.summary(profile)
    for index in np.unique(profile.stack[bottom]):
        names = [profile.frames[f].function for f in profile.stacks[index]]
        truncated = bool(np.any(profile.flags[profile.stack == index] & FLAG_TRUNCATED))
        assert names.count("recurse") == depth, (
            f"only {names.count('recurse')} of the {depth} recurse frames were recorded "
            f"(max_depth={profile.meta.extra.get('max_depth')}, FLAG_TRUNCATED set: {truncated})"
        )
        assert "_deep_recursion_profile" in names, "the root-side frames are missing"
        assert names[-depth - 1 :] == ["recurse"] * depth + ["recursion_bottom"]
    assert not np.any(profile.flags[bottom] & FLAG_TRUNCATED)


def test_deep_recursion_captured_in_full_with_default_max_depth() -> None:
    """900 recursive frames (below CPython's default recursion limit of 1000), plus the test's own
    callers, are recorded whole with the default max_depth."""
    profile = _deep_recursion_profile(900)
    _check_full_deep_stacks(profile, 900)


def test_deep_recursion_captured_in_full_with_large_max_depth() -> None:
    profile = _deep_recursion_profile(900, max_depth=2048)
    _check_full_deep_stacks(profile, 900)


# -- drops -------------------------------------------------------------------------------------------


DROP_PROGRAM = textwrap.dedent(
    """
    import json, sys, threading, time
    import aether_native

    def recurse(depth, seconds):
        if depth > 1:
            return recurse(depth - 1, seconds) + 1
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            for _ in range(50):
                pass
        return 1

    sys.setrecursionlimit(2000)
    # A fresh process: the C ring is allocated at the size asked for (a ring is reused, not
    # shrunk, by later sessions of one process).
    sampler = aether_native.Sampler("500us", max_depth=1024, ring_size="64KiB").start()
    c0 = time.thread_time()
    recurse(300, 0.5)
    cpu = time.thread_time() - c0
    profile = sampler.stop()
    main = threading.main_thread().native_id
    print(json.dumps({
        "cpu": cpu,
        "samples": len(profile),
        "recorded": int(profile.weight_ns[profile.tid == main].sum()),
        "dropped": profile.meta.dropped,
        "counters": profile.meta.extra["sampler"],
    }))
    """
)


def test_full_ring_drops_are_counted_and_weight_accounted(tmp_path) -> None:
    """A 64 KiB ring with 300-frame stacks (~5 KB a record) at 2 kHz overflows between drains
    (every 20 ms): drops must show in meta.dropped, and the weight of the dropped samples in the
    lost_weight_ns counter, so recorded + lost weight still adds up to the thread's CPU time."""
    result = workloads.run_script(DROP_PROGRAM, tmp_path, timeout=30)
    assert result.returncode == 0, workloads.describe(result)
    out = json.loads(result.stdout)
    counters = out["counters"]
    assert out["dropped"] == counters["records_dropped"]
    assert out["dropped"] > 0, f"no drops: {out}"
    assert counters["records_written"] == out["samples"]
    assert out["samples"] > 0
    cpu_ns = out["cpu"] * 1e9
    assert out["recorded"] < 0.95 * cpu_ns, "dropped samples cannot have kept their weight"
    assert out["recorded"] + counters["lost_weight_ns"] == pytest.approx(cpu_ns, rel=0.1), out
