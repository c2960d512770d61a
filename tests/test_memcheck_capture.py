"""Captures that survive the target running out of memory, periodic checkpoints, and the bad
input around them (a second tracker, capture options out of order).

Ground truth:
- ``fill.py`` lowers its own RLIMIT_AS to 256 MiB above what it has mapped, then appends 200-byte
  bytes objects to a global list from ``fill()`` until MemoryError: hundreds of thousands of live
  blocks, the address space used up when memcheck must capture them. The capture must load, name
  ``fill`` as the leak with at least 100 MB, and say the program ended in MemoryError.
- ``slow.py`` keeps one 1 MiB bytearray every 20 ms from ``grow()`` (100 of them), then sleeps;
  killed with SIGKILL after 3 s, the last checkpoint must load and hold ``grow``'s 100 MiB.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aether_perf.analysis.heap import leak_report
from aether_perf.model import load_heap
from workloads import cli_env

from aether_native.memory import AllocationTracker

ENV = cli_env()
MIB = 1 << 20

FILL = """\
import resource

HELD = []


def mapped_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024


def fill():
    while True:
        HELD.append(b"x" * 200 + len(HELD).to_bytes(8, "little"))


limit = mapped_bytes() + 256 * 2**20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
fill()
"""

SLOW = """\
import time

HELD = []


def grow():
    for _ in range(100):
        HELD.append(bytearray(2**20))
        time.sleep(0.02)


grow()
print("grown", flush=True)
time.sleep(60)
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def aether(tmp_path: Path, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aether_native", "memcheck", *args],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


def test_target_out_of_address_space_still_leaves_a_capture(tmp_path: Path) -> None:
    write(tmp_path, "fill.py", FILL)
    done = aether(tmp_path, "-o", "fill.heap.aprof", "fill.py")
    assert done.returncode == 1, done.stderr
    assert "MemoryError" in done.stderr
    assert "wrote heap snapshot to fill.heap.aprof" in done.stderr
    snap = load_heap(tmp_path / "fill.heap.aprof")
    assert snap.meta.extra["exception"] == "MemoryError"
    assert "incomplete" not in snap.meta.extra
    report = leak_report(snap)
    top = report.groups[0]
    assert top.frames[-1].function == "fill"
    assert top.bytes >= 100 * MIB and top.blocks >= 300_000
    # The memory series ran to the end, the tracked heap's peak with the leak in it.
    assert snap.series is not None and snap.series.heap_bytes.max() >= top.bytes


def test_memory_error_raised_by_the_target(tmp_path: Path) -> None:
    write(
        tmp_path,
        "raise.py",
        "KEPT = []\n\ndef keep():\n    for _ in range(1000):\n        KEPT.append(bytearray(1000))\n\n"
        "keep()\nraise MemoryError('pretend')\n",
    )
    done = aether(tmp_path, "-o", "r.heap.aprof", "raise.py")
    assert done.returncode == 1 and "MemoryError: pretend" in done.stderr
    snap = load_heap(tmp_path / "r.heap.aprof")
    assert snap.meta.extra["exception"] == "MemoryError"
    kept = sum(g.bytes for g in leak_report(snap).groups if g.frames and g.frames[-1].function == "keep")
    truth = 1000 * sys.getsizeof(bytearray(1000))
    assert abs(kept - truth) <= 0.02 * truth


class _Starved:
    """A HeapSession whose capture always runs out of memory (everything else passes through)."""

    def __init__(self, session: Any) -> None:
        self._session = session

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)

    def stop(self, before_capture: Any = None) -> None:
        self._session.stop(lambda: (_ for _ in ()).throw(MemoryError()))

    def capture(self) -> None:
        raise MemoryError


def test_capture_out_of_memory_falls_back_to_totals_and_series() -> None:
    tracker = AllocationTracker(series_interval="5ms").start()
    held = [bytearray(1000) for _ in range(100)]
    time.sleep(0.05)
    tracker._session = _Starved(tracker._session)  # type: ignore[assignment]
    tracker.stop()
    assert tracker.capture_error == "MemoryError"
    snap = tracker.snapshot()
    assert len(snap) == 0 and snap.meta.extra["incomplete"].startswith("out of memory")
    assert snap.meta.allocations >= 100 and snap.meta.current_bytes >= 100 * 1000
    assert snap.series is not None and len(snap.series) >= 5
    del held


def test_checkpoint_survives_sigkill(tmp_path: Path) -> None:
    write(tmp_path, "slow.py", SLOW)
    command = ["memcheck", "--checkpoint", "0.2s", "-o", "s.heap.aprof", "slow.py"]
    child = subprocess.Popen(
        [sys.executable, "-m", "aether_native", *command],
        cwd=tmp_path,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "grown\n"
        time.sleep(0.6)  # at least two checkpoints after the growth
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.communicate(timeout=30)
    snap = load_heap(tmp_path / "s.heap.aprof")
    assert snap.meta.extra["checkpoint"] is True and snap.meta.extra["command"] == ["slow.py"]
    grow = sum(g.bytes for g in leak_report(snap).groups if g.frames and g.frames[-1].function == "grow")
    assert 100 * MIB <= grow <= 101 * MIB


@pytest.mark.parametrize(
    ("options", "start"),
    [
        (["--checkpoint", "soon"], "--checkpoint"),
        (["--checkpoint", "0s"], "--checkpoint"),
        (["--checkpoint", "10ms"], "--checkpoint"),
        (["--series-interval", "often"], "--series-interval"),
        (["--series-interval", "1us"], "--series-interval"),
        (["--series-interval", "off", "--checkpoint", "1s"], "--checkpoint needs the memory series"),
    ],
)
def test_bad_checkpoint_and_series_options(tmp_path: Path, options: list[str], start: str) -> None:
    write(tmp_path, "t.py", "print('ran')\n")
    done = aether(tmp_path, *options, "t.py")
    assert done.returncode == 2 and "ran" not in done.stdout
    assert done.stderr.startswith(f"aether: error: {start}") and done.stderr.count("\n") == 1


def test_series_interval_option(tmp_path: Path) -> None:
    write(tmp_path, "t.py", "import time\ntime.sleep(0.2)\n")
    assert aether(tmp_path, "-q", "--series-interval", "off", "-o", "off.heap.aprof", "t.py").returncode == 0
    assert load_heap(tmp_path / "off.heap.aprof").series is None
    assert aether(tmp_path, "-q", "--series-interval", "2ms", "-o", "on.heap.aprof", "t.py").returncode == 0
    series = load_heap(tmp_path / "on.heap.aprof").series
    assert series is not None and series.interval_ns == 2_000_000 and len(series) >= 30


def test_target_starting_a_second_tracker_gets_a_clear_error(tmp_path: Path) -> None:
    write(tmp_path, "two.py", "import aether_native.memory as m\n\nm.AllocationTracker().start()\n")
    done = aether(tmp_path, "-q", "-o", "two.heap.aprof", "two.py")
    # The target's own error, as python would show it; memcheck still writes its capture.
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "aether_perf.errors.SamplerBusyError: another AllocationTracker is already running in this process"
    )
    assert load_heap(tmp_path / "two.heap.aprof").meta.extra["exception"] == "SamplerBusyError"


def test_capture_options_out_of_order() -> None:
    from aether_perf.errors import InvalidArgument, SamplerStateError

    no_series = AllocationTracker(series_interval=None)
    with pytest.raises(SamplerStateError, match="memory series"):
        no_series.capture_over("1MiB")
    with pytest.raises(SamplerStateError, match="memory series"):
        no_series.checkpoint_every("1s", lambda snap: None)
    tracker = AllocationTracker()
    with pytest.raises(InvalidArgument, match="limit"):
        tracker.capture_over("lots")
    with pytest.raises(InvalidArgument, match="checkpoint interval"):
        tracker.checkpoint_every("1ms", lambda snap: None)
    with tracker:
        with pytest.raises(SamplerStateError, match="before start"):
            tracker.capture_over("1MiB")
        with pytest.raises(SamplerStateError, match="before start"):
            tracker.checkpoint_every("1s", lambda snap: None)
    assert tracker.over_limit_snapshot() is None
