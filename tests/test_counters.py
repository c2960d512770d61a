"""Counters (perf_event_open through the C core) against ground truth on this machine.

Software events must work everywhere (task-clock, page-faults, context switches, migrations);
hardware events are either counted (a PMU exists) or reported unavailable with the errno's reason,
never as a number. Ground truth: the process's own CPU clock for a busy loop, pages a test
touches, sleeps a test makes.
"""

from __future__ import annotations

import errno
import mmap
import os
import threading
import time
from pathlib import Path

import pytest
from aether_perf.errors import InvalidArgument, SamplerStateError
from aether_perf.model.counters import SOURCE_PERF, SOURCE_PROCFS

from aether_native import Counters, _core
from aether_native.counters import resolve_events, unavailable_reason

PAGE = mmap.PAGESIZE


def _busy(seconds: float) -> int:
    end = time.thread_time() + seconds
    x = 0
    while time.thread_time() < end:
        x += 1
    return x


def _hardware_errno() -> int:
    return _core.counter_probe(0, 1)  # PERF_TYPE_HARDWARE, INSTRUCTIONS


HAS_PMU = _hardware_errno() == 0


def test_task_clock_matches_process_cpu_time_for_a_busy_loop() -> None:
    with Counters(["task-clock"]) as counters:
        # the process's CPU clock read right inside the counted stretch: the ground truth
        before = time.process_time_ns()
        _busy(0.3)
        after = time.process_time_ns()
    event = counters.read()["task-clock"]
    assert event.source == SOURCE_PERF and event.available
    assert event.coverage == 1.0  # software events are never multiplexed
    cpu = after - before
    assert event.scaled is not None
    assert abs(event.scaled - cpu) <= 0.05 * cpu, (event.scaled, cpu)


def test_page_faults_count_at_least_the_pages_touched() -> None:
    pages = 2000
    with Counters(["page-faults", "minor-faults"]) as counters:
        region = mmap.mmap(-1, pages * PAGE)
        region.madvise(mmap.MADV_NOHUGEPAGE)  # one fault per page even where THP is "always"
        for offset in range(0, pages * PAGE, PAGE):
            region[offset] = 1
        region.close()
    reading = counters.read()
    assert reading.value("page-faults") is not None
    assert reading.value("page-faults") >= pages  # type: ignore[operator]
    assert reading.value("minor-faults") >= pages  # type: ignore[operator]


def test_context_switches_from_sleeps() -> None:
    sleeps = 30
    with Counters(["context-switches", "task-clock"]) as counters:
        for _ in range(sleeps):
            time.sleep(0.002)
    event = counters.read()["context-switches"]
    assert event.available and event.scaled is not None
    assert event.scaled >= sleeps


def test_user_only_takes_kernel_side_events_from_procfs_and_says_so() -> None:
    sleeps = 30
    with Counters(["context-switches", "cpu-migrations", "task-clock"], user_only=True) as counters:
        for _ in range(sleeps):
            time.sleep(0.002)
    reading = counters.read()
    switches = reading["context-switches"]
    # user-only perf counting of a kernel-side event reads 0: it must not be reported as such
    assert switches.source == SOURCE_PROCFS
    assert "user mode" in switches.note and "0" in switches.note
    assert switches.scaled is not None and switches.scaled >= sleeps
    assert reading["cpu-migrations"].source == SOURCE_PROCFS
    assert reading["cpu-migrations"].scaled is not None
    assert reading["task-clock"].source == SOURCE_PERF and reading["task-clock"].user_only


@pytest.mark.skipif(HAS_PMU, reason="this machine has a PMU: hardware events are counted")
def test_hardware_events_are_unavailable_with_the_reason_not_zero() -> None:
    with Counters(["instructions", "cycles", "cache-misses", "branch-misses", "task-clock"]) as counters:
        _busy(0.02)
    reading = counters.read()
    err = _hardware_errno()
    for name in ("instructions", "cycles", "cache-misses", "branch-misses"):
        event = reading[name]
        assert not event.available
        assert event.value is None and event.scaled is None
        assert event.errno == err
        assert event.reason == unavailable_reason(err, _core.perf_event_paranoid())
        assert event.reason.startswith(errno.errorcode[err])
    assert reading.ipc is None and reading.cpi is None and reading.cache_miss_rate is None
    assert reading.branch_mispredict_rate is None and reading.mpki is None
    assert reading["task-clock"].available  # software events still work beside them


@pytest.mark.skipif(not HAS_PMU, reason=f"no PMU here: {unavailable_reason(_hardware_errno(), None)}")
def test_hardware_events_count_where_a_pmu_exists() -> None:
    with Counters(["instructions", "cycles", "branches", "branch-misses"]) as counters:
        _busy(0.1)
    reading = counters.read()
    assert reading.ipc is not None and reading.ipc > 0
    assert reading.value("branches") >= reading.value("branch-misses")  # type: ignore[operator]


def test_reasons_for_each_errno() -> None:
    assert unavailable_reason(errno.ENOENT, 2).startswith("ENOENT")
    assert "hardware feature" in unavailable_reason(errno.EOPNOTSUPP, 2)
    denied = unavailable_reason(errno.EACCES, 3)
    assert "perf_event_paranoid is 3" in denied and "CAP_PERFMON" in denied and "sysctl" in denied


def test_group_read_returns_every_member_with_times() -> None:
    group = _core.CounterGroup([(1, 1), (1, 2), (0, 1)])  # task-clock, page-faults, instructions
    try:
        assert group.grouped
        group.enable()
        _busy(0.01)
        values = group.read()
        assert values[0] is not None and values[1] is not None
        value, enabled, running = values[0]
        assert value > 0 and enabled > 0 and running == enabled
        assert values[1][1] == enabled  # one group: one pair of times
        if not HAS_PMU:
            assert values[2] is None and group.errors()[2] == _hardware_errno()
    finally:
        group.close()


def test_interval_deltas_add_up() -> None:
    with Counters(["task-clock", "page-faults"]) as counters:
        first = counters.read()
        _busy(0.05)
        second = counters.read()
        _busy(0.05)
        third = counters.read()
    delta = third - second
    assert delta.duration_ns == third.duration_ns - second.duration_ns
    total = (second - first).value("task-clock") + delta.value("task-clock")  # type: ignore[operator]
    assert total == third.value("task-clock") - first.value("task-clock")  # type: ignore[operator]
    assert 0.04e9 <= delta.value("task-clock") <= 0.2e9  # type: ignore[operator]


def test_inherit_counts_threads_started_later() -> None:
    with Counters(["task-clock"]) as counters:
        worker = threading.Thread(target=_busy, args=(0.2,))
        worker.start()
        worker.join()
    assert counters.read().value("task-clock") >= 0.19e9  # type: ignore[operator]


def test_per_thread_attributes_cpu_to_the_thread_that_used_it() -> None:
    ready = threading.Event()
    tids: list[int] = []

    def work() -> None:
        tids.append(threading.get_native_id())
        ready.wait(5)
        _busy(0.2)

    with Counters(["task-clock"], per_thread=True, scan_interval=0.005) as counters:
        worker = threading.Thread(target=work)
        worker.start()
        # the watcher opens the new thread's group within a scan or two (later on a loaded machine)
        deadline = time.monotonic() + 10
        while not (tids and tids[0] in counters.read().threads) and time.monotonic() < deadline:
            time.sleep(0.005)
        ready.set()
        worker.join()
    reading = counters.read()
    assert tids[0] in reading.threads
    assert reading.threads[tids[0]].value("task-clock") >= 0.19e9  # type: ignore[operator]
    main = reading.threads[threading.get_native_id()].value("task-clock")
    assert main is not None and main < 0.15e9


def test_fork_child_counts_join_the_parent_with_inherit() -> None:
    with Counters(["task-clock"]) as counters:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            _busy(0.2)
            os._exit(0)
        os.waitpid(pid, 0)
    # the parent itself barely ran; the child's 0.2 s of CPU is folded in through inherit
    assert counters.read().value("task-clock") >= 0.19e9  # type: ignore[operator]


def test_bad_input() -> None:
    with pytest.raises(InvalidArgument, match=r"unknown event 'cache-mises'.*known events: .*cache-misses"):
        Counters(["cache-mises"])
    with pytest.raises(InvalidArgument, match="exclude each other"):
        Counters(["task-clock"], per_thread=True, inherit=True)
    with pytest.raises(SamplerStateError):
        Counters(["task-clock"]).read()
    assert [spec.name for spec in resolve_events("cs,faults,cpu-cycles,cs")] == [
        "context-switches",
        "page-faults",
        "cycles",
    ]


UNPRIVILEGED = """\
import ctypes, json, sys, time

libc = ctypes.CDLL(None, use_errno=True)


class Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class Data(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint32) for name in ("effective", "permitted", "inheritable")]


header, data = Header(0x20080522, 0), (Data * 2)()
assert libc.capget(ctypes.byref(header), data) == 0
data[0].effective &= ~(1 << 21)  # CAP_SYS_ADMIN
data[1].effective &= ~(1 << (38 - 32))  # CAP_PERFMON
assert libc.capset(ctypes.byref(header), data) == 0

from aether_native import Counters, _core

group = _core.CounterGroup([(1, 1), (1, 3)])
with Counters(["task-clock", "context-switches"]) as counters:
    for _ in range(20):
        time.sleep(0.002)
reading = counters.read()
print(json.dumps({"errors": group.errors(), "user_only": group.user_only(), "reading": reading.to_dict()}))
"""


@pytest.mark.skipif(
    (_core.perf_event_paranoid() or 0) < 2, reason="perf_event_paranoid < 2 lets anyone count kernel mode"
)
def test_without_cap_perfmon_kernel_counting_is_retried_user_only(tmp_path: Path) -> None:
    """A process without CAP_PERFMON/CAP_SYS_ADMIN at perf_event_paranoid >= 2 gets EACCES for
    kernel-mode counting: the events must open user-only, and context switches come from /proc."""
    import json
    import subprocess
    import sys

    from workloads import child_env

    done = subprocess.run(
        [sys.executable, "-c", UNPRIVILEGED],
        cwd=tmp_path,  # not the source tree: its aether_native/ has no compiled core in CI
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["errors"] == [0, 0] and result["user_only"] == [True, True]
    events = {event["name"]: event for event in result["reading"]["events"]}
    assert (
        events["task-clock"]["user_only"] and "kernel-mode counting refused" in events["task-clock"]["note"]
    )
    switches = events["context-switches"]
    assert switches["source"] == SOURCE_PROCFS and switches["value"] >= 20
    assert f"perf_event_paranoid={_core.perf_event_paranoid()}" in switches["note"]
