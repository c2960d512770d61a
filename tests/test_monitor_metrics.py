"""Collectors against ground truth: a process tree with known threads, memory, disk writes and a
busy CPU; the machine collector against psutil's own totals; the Monitor loop's timing controls."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
from aether_perf.errors import InvalidArgument
from aether_perf.monitor import Monitor, ProcessGone, parse_metrics
from aether_perf.monitor.metrics import MachineCollector, ProcessTreeCollector

MB = 1 << 20

# The root starts a grandchild holding 160 MiB (touched), then runs 4 idle threads and writes
# 8 MiB (fsync'ed) once told to, and busy-loops until told to stop.
TREE = textwrap.dedent(
    """
    import os, subprocess, sys, threading, time
    holder = subprocess.Popen([sys.executable, "-c",
        "import sys, time; b = bytearray(160 << 20)\\n"
        "for i in range(0, len(b), 4096): b[i] = 1\\n"
        "print('held', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    holder.stdout.readline()
    stop = threading.Event()
    for _ in range(4):
        threading.Thread(target=stop.wait, daemon=True).start()
    print("ready", flush=True)
    sys.stdin.readline()
    with open(sys.argv[1], "wb") as f:
        f.write(os.urandom(8 << 20)); f.flush(); os.fsync(f.fileno())
    print("written", flush=True)
    end = time.monotonic() + 60
    while time.monotonic() < end and not os.path.exists(sys.argv[1] + ".stop"):
        pass
    holder.kill()
    """
)


def test_process_tree_ground_truth(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    child = subprocess.Popen(
        [sys.executable, "-c", TREE, str(target)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "ready"
        collector = ProcessTreeCollector(child.pid, ("cpu", "memory", "io", "threads"))
        first = collector.collect()
        assert first.values["threads"] == 1 + 4 + 1  # root main + 4 idle threads, grandchild main
        rss = first.values["memory_bytes"]
        assert 160 * MB <= rss <= 160 * MB + 120 * MB  # the holder's bytes plus two interpreters
        total = psutil.virtual_memory().total
        assert first.values["memory_percent"] == pytest.approx(100 * rss / total)
        written_before = first.counters["disk_write_bytes"]
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "written"
        time.sleep(0.5)  # half a second of the busy loop
        second = collector.collect()
        assert second.counters["disk_write_bytes"] - written_before >= 8 * MB
        assert second.values["disk_write_rate"] > 0
        # One thread spinning: at most about one CPU. On a shared machine it may get far less, so
        # the lower bound only says its CPU was counted at all (an idle tree reads ~0).
        assert 3.0 <= second.values["cpu_percent"] <= 130.0
        (tmp_path / "out.bin.stop").touch()
        child.wait(30)
        with pytest.raises(ProcessGone, match=f"process {child.pid} exited"):
            collector.collect()
    finally:
        child.kill()
        child.wait()


def test_missing_pid() -> None:
    with pytest.raises(ProcessGone, match="no process with PID 999999999"):
        ProcessTreeCollector(999_999_999, ("cpu",))


def test_machine_collector_matches_psutil() -> None:
    collector = MachineCollector(("cpu", "memory", "io", "network", "threads"))
    collector.collect()
    time.sleep(0.2)
    sample = collector.collect()
    vm = psutil.virtual_memory()
    assert sample.values["memory_percent"] == pytest.approx(vm.percent, abs=5)
    assert sample.values["memory_bytes"] == pytest.approx(vm.total - vm.available, rel=0.2)
    assert 0.0 <= sample.values["cpu_percent"] <= 100.0
    net = psutil.net_io_counters()
    assert sample.counters["net_recv_bytes"] <= net.bytes_recv
    threads = sum(p.info["num_threads"] or 0 for p in psutil.process_iter(["num_threads"]))
    assert sample.values["threads"] == pytest.approx(threads, rel=0.2)
    assert set(sample.values) == {
        "cpu_percent",
        "memory_percent",
        "memory_bytes",
        "disk_read_rate",
        "disk_write_rate",
        "net_recv_rate",
        "net_sent_rate",
        "threads",
    }


def test_parse_metrics() -> None:
    assert parse_metrics("threads, cpu") == ("cpu", "threads")
    with pytest.raises(InvalidArgument, match="unknown metric 'gpu'"):
        parse_metrics("cpu,gpu")
    with pytest.raises(InvalidArgument, match="no metric given"):
        parse_metrics(" , ")


def test_monitor_run_count_history_and_stop() -> None:
    monitor = Monitor("memory", interval=0.05, history=5)
    seen: list[float] = []
    monitor.run(lambda s: seen.append(s.time), count=8)
    assert len(seen) == 8 and seen == sorted(seen)
    assert len(monitor.history["memory_percent"]) == 5  # only the last `history` points
    assert [t for t, _ in monitor.history["memory_percent"]] == seen[-5:]
    stopper = Monitor("cpu", interval=0.05)
    stopper.run(lambda s: stopper.stop() if stopper.samples == 3 else None)
    assert stopper.samples == 3
    with pytest.raises(InvalidArgument, match="interval"):
        Monitor("cpu", interval="1ns")
