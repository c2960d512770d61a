"""Thread scheduling counters against threads that sleep, spin and yield known amounts."""

from __future__ import annotations

import os
import resource
import threading
import time

import pytest
from aether_perf import sched
from aether_perf.errors import InvalidArgument
from aether_perf.sched import SchedReport, ThreadSched

SLEEPS = 100


def _sleeper(slept: threading.Event | None = None, done: threading.Event | None = None) -> None:
    for _ in range(SLEEPS):
        time.sleep(0.002)
    if slept is not None and done is not None:
        slept.set()
        done.wait()  # alive at the monitor's last poll (an exited thread's last counts are lost)


def _spin(seconds: float, spun: threading.Event | None = None, done: threading.Event | None = None) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass
    if spun is not None and done is not None:
        spun.set()
        done.wait()


def test_read_tasks_sees_this_thread() -> None:
    tasks = sched.read_tasks()
    me = tasks[threading.get_native_id()]
    assert me.cpu_ns > 0 and me.voluntary >= 0 and me.processor in range(os.cpu_count() or 64)
    with pytest.raises(ProcessLookupError):
        sched.read_tasks(pid=2**22 + 12345)


def test_sleeps_are_voluntary_switches_and_spinning_is_cpu() -> None:
    slept, done = threading.Event(), threading.Event()
    rusage_before = resource.getrusage(resource.RUSAGE_SELF)
    with sched.track("20ms") as monitor:
        # One after the other: waiting for the GIL would add voluntary switches.
        sleeper = threading.Thread(target=_sleeper, args=(slept, done), name="sleeper")
        sleeper.start()
        slept.wait()
        spun = threading.Event()
        spinner = threading.Thread(target=_spin, args=(0.2, spun, done), name="spinner")
        spinner.start()
        spun.wait()
        exited = threading.Thread(target=_sleeper, name="exited")
        exited.start()
        exited.join()
    done.set()
    sleeper.join()
    spinner.join()
    report = monitor.report
    assert report is not None
    by_name = {t.name: t for t in report.threads}
    s = by_name["sleeper"]
    # Each sleep blocks once: one voluntary switch (a few more for thread start and the event).
    assert SLEEPS <= s.voluntary <= SLEEPS + 10
    assert s.cpu_ns < 0.1e9
    spin = by_name["spinner"]
    assert spin.cpu_ns == pytest.approx(0.2e9, rel=0.2)
    # A threading.Thread that exited between polls is counted up to its end.
    assert SLEEPS <= by_name["exited"].voluntary <= SLEEPS + 10
    # The process-wide count includes it too.
    assert report.process_voluntary is not None
    assert report.process_voluntary >= 2 * SLEEPS
    rusage_after = resource.getrusage(resource.RUSAGE_SELF)
    assert report.process_voluntary <= rusage_after.ru_nvcsw - rusage_before.ru_nvcsw
    assert report.duration >= 0.2
    assert report.timeline and all(p.switches_per_s >= 0 for p in report.timeline)
    assert SchedReport.from_dict(report.to_dict()) == report


def test_excluded_threads_are_left_out_of_threads_and_process_counts() -> None:
    """A profiler's own threads (here a thread sleeping SLEEPS times) must not count."""
    go, slept, done = threading.Event(), threading.Event(), threading.Event()

    def noisy() -> None:
        go.wait()
        _sleeper(slept, done)

    thread = threading.Thread(target=noisy, name="noisy")
    thread.start()
    assert thread.native_id is not None
    with sched.track("20ms", exclude=[thread.native_id]) as monitor:
        go.set()
        slept.wait()
    done.set()
    thread.join()
    report = monitor.report
    assert report is not None
    assert "noisy" not in {t.name for t in report.threads}
    assert report.process_voluntary is not None and report.process_voluntary < SLEEPS // 4


def test_a_pinned_thread_migrates_at_most_once() -> None:
    """Pinned to one CPU, a spinning thread can move only when it is placed at creation (the
    kernel may start a new thread on another CPU than its parent's: counted) and when pinned."""
    cpu = sorted(os.sched_getaffinity(0))[-1]
    spun, done = threading.Event(), threading.Event()

    def pinned() -> None:
        os.sched_setaffinity(0, {cpu})
        _spin(0.1)
        spun.set()
        done.wait()

    with sched.track("20ms") as monitor:
        t = threading.Thread(target=pinned, name="pinned")
        t.start()
        spun.wait()
    done.set()
    t.join()
    assert monitor.report is not None
    [p] = [t for t in monitor.report.threads if t.name == "pinned"]
    assert p.migrations <= 2 and p.migrations_exact
    assert p.cpu_ns >= 0.1e9


def _report(threads: list[ThreadSched], duration: float = 1.0) -> SchedReport:
    return SchedReport(duration, tuple(threads))


def _t(name: str, cpu_ms: float = 100, vol: int = 0, invol: int = 0, mig: int = 0) -> ThreadSched:
    return ThreadSched(hash(name) & 0xFFFF, name, int(cpu_ms * 1e6), 0, vol, invol, mig, True, 1.0)


def test_context_switch_rule_both_sides() -> None:
    assert sched.findings(_report([_t("a", vol=600), _t("b", invol=400)])) == []
    [f] = sched.findings(_report([_t("a", vol=600), _t("b", invol=401)]))
    assert f.rule == "sched.context-switches" and f.measured == 1001 and f.threshold == 1000
    assert f.evidence["voluntary"] == 600 and f.evidence["involuntary"] == 401
    assert sched.findings(_report([_t("a", vol=1500)]), max_switch_rate=2000) == []


def test_migration_rule_both_sides() -> None:
    assert sched.findings(_report([_t("a", mig=10)])) == []
    [f] = sched.findings(_report([_t("a", mig=11)]))
    assert f.rule == "sched.migrations" and f.measured == 11
    assert sched.findings(_report([_t("a", mig=11)]), max_migrations=20) == []


def test_load_imbalance_rule_both_sides() -> None:
    balanced = [_t("ThreadPoolExecutor-0_0", 100), _t("ThreadPoolExecutor-0_1", 71)]
    assert sched.findings(_report(balanced)) == []
    skewed = [_t("ThreadPoolExecutor-0_0", 100), _t("ThreadPoolExecutor-0_1", 69), _t("main", 1)]
    [f] = sched.findings(_report(skewed))
    assert f.rule == "sched.load-imbalance" and f.measured == pytest.approx(0.31)
    assert f.evidence["pool"] == "ThreadPoolExecutor-0"
    # different pools are judged apart; a pool that barely ran is not judged
    apart = [_t("w-1", 100), _t("io-1", 10)]
    assert sched.findings(_report(apart)) == []
    assert sched.findings(_report([_t("w-1", 1), _t("w-2", 40)])) == []
    assert sched.pools([_t("Thread-1 (work)"), _t("Thread-2 (work)")]).keys() == {"Thread"}


def test_real_pool_imbalance_is_found() -> None:
    from concurrent.futures import ThreadPoolExecutor

    barrier = threading.Barrier(2)
    spun = [threading.Event(), threading.Event()]
    done = threading.Event()

    def job(index: int, seconds: float) -> None:
        barrier.wait()
        _spin(seconds)
        spun[index].set()
        done.wait()  # alive at the monitor's last poll

    with ThreadPoolExecutor(2, thread_name_prefix="skew") as pool:
        monitor = sched.SchedMonitor("20ms").start()
        futures = [pool.submit(job, 0, 0.15), pool.submit(job, 1, 0.03)]
        for event in spun:
            event.wait()
        report = monitor.stop()
        done.set()
        for future in futures:
            future.result()
    [f] = [f for f in sched.findings(report) if f.rule == "sched.load-imbalance"]
    assert f.evidence["pool"] == "skew"
    assert f.measured == pytest.approx(0.8, abs=0.1)


def test_bad_inputs() -> None:
    with pytest.raises(InvalidArgument):
        sched.track("soon")
    with pytest.raises(InvalidArgument):
        sched.track(0)
    report = _report([_t("a")])
    with pytest.raises(InvalidArgument):
        sched.findings(report, max_switch_rate=-1)
    with pytest.raises(InvalidArgument):
        sched.findings(report, max_imbalance=1.5)
    monitor = sched.SchedMonitor()
    with pytest.raises(RuntimeError):
        monitor.stop()
