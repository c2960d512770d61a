"""`aether annotate` and the line-level analyses behind it.

Ground truth: hand-built profiles and heap snapshots with known weights per line (exact numbers),
and a real workload that spins on two single-line loops for known CPU times (0.3 s and 0.1 s of
``time.thread_time``), whose line shares (75% / 25%) annotate must show within 3 percentage
points; a workload that allocates 100 x 100,000-byte objects on one line, whose bytes the margin
must show within 5%.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from workloads import cli_env

ROOT = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("aether_perf") is None:
    sys.path.insert(0, str(ROOT / "python"))

from aether_perf.analysis.lines import heap_lines, line_stats  # noqa: E402
from aether_perf.model import Frame, HeapMeta, HeapSnapshot, Profile, ProfileMeta  # noqa: E402
from aether_perf.model.frame import FLAG_IDLE  # noqa: E402
from aether_perf.report.annotate_data import annotate  # noqa: E402
from aether_perf.report.annotate_html import write_pages  # noqa: E402

ENV = cli_env()
MS = 1_000_000

SPIN = """\
import time

def spin(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end: pass

def main():
    end = time.thread_time() + 0.3
    while time.thread_time() < end: pass
    end = time.thread_time() + 0.1
    while time.thread_time() < end: pass

main()
"""
SPIN_A, SPIN_B = 9, 11

ALLOC = """\
KEEP = []

def fill():
    for _ in range(100):
        KEEP.append(bytes(100_000))

fill()
"""


def aether(args: Sequence[str], cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aether_native", *args],
        cwd=cwd,
        env=kwargs.pop("env", ENV),
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def margin(stdout: str, line: int) -> list[str]:
    """The margin columns of source line `line` in annotate's output."""
    for text in stdout.splitlines():
        m = re.match(rf"\s*{line} (.*?)\s*>?\|", text)
        if m:
            return m.group(1).split()
    raise AssertionError(f"line {line} not in output:\n{stdout}")


def hand_profile() -> Profile:
    frames = [
        Frame("<module>", "app.py", 10, 1),
        Frame("work", "app.py", 4, 3),
        Frame("work", "app.py", 5, 3),
        Frame("wait", "app.py", 8, 7),
    ]
    return Profile(
        frames,
        [(0, 1), (0, 2), (0, 3)],
        {},
        stack=[0, 0, 1, 2, 2],
        tid=[1] * 5,
        time_ns=[1, 2, 3, 4, 5],
        weight_ns=[30 * MS, 30 * MS, 20 * MS, 10 * MS, 10 * MS],
        flags=[0, 0, 0, FLAG_IDLE, 0],
        meta=ProfileMeta("wall", 0.001, 0.0, 0.1, "3.11.7", 5, 0, "app.py"),
    )


def test_line_stats_self_total_and_cpu_share() -> None:
    stats = line_stats(hand_profile())
    work4, work5, wait8, mod10 = (stats[("app.py", n)] for n in (4, 5, 8, 10))
    assert (work4.self_ns, work4.self_samples, work4.self_pct) == (60 * MS, 2, 60.0)
    assert (work5.self_ns, work5.self_pct, work5.cpu_pct) == (20 * MS, 20.0, 20.0)
    assert (wait8.self_ns, wait8.self_pct, wait8.cpu_pct) == (20 * MS, 20.0, 10.0)  # one idle sample
    assert (mod10.self_ns, mod10.total_ns, mod10.total_pct) == (0, 100 * MS, 100.0)
    assert work4.function == "work" and wait8.function == "wait"
    assert hand_profile().line_stats() == stats


def test_heap_lines_totals_and_live_bytes() -> None:
    frames = [Frame("<module>", "app.py", 9, 1), Frame("grow", "app.py", 3, 2)]
    meta = HeapMeta("exact", 0, 0.0, 1.0, "3.11.7", False, 5000, 0, 60, 0, 5000, 5000)
    meta.extra["sites"] = [
        {"file": "app.py", "line": 3, "function": "grow", "allocations": 50, "bytes": 4000, "growths": 40},
        {"file": "app.py", "line": 9, "function": "<module>", "allocations": 10, "bytes": 1000, "growths": 0},
    ]
    snap = HeapSnapshot(
        frames,
        [(0, 1)],
        stack=[0, 0],
        size=[100, 300],
        bytes=[100, 300],
        count=[1, 1],
        tid=[1, 1],
        time_ns=[0, 0],
        meta=meta,
    )
    lines = heap_lines(snap)
    grow = lines[("app.py", 3)]
    assert (grow.allocations, grow.bytes, grow.growths) == (50, 4000, 40)
    assert (grow.live_blocks, grow.live_bytes) == (2, 400)
    assert lines[("app.py", 9)].live_bytes == 0 and lines[("app.py", 9)].bytes == 1000
    assert snap.line_allocations() == lines


def test_annotate_shows_known_line_shares(tmp_path: Path) -> None:
    script = write(tmp_path / "spin.py", SPIN)
    done = aether(["profile", "-o", "spin.aprof", "spin.py"], tmp_path)
    assert done.returncode == 0, done.stderr
    shown = aether(["annotate", "spin.aprof"], tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert str(script) in shown.stdout
    a, b = margin(shown.stdout, SPIN_A), margin(shown.stdout, SPIN_B)
    # columns: time "s" time% cpu%
    share_a, share_b = float(a[2].rstrip("%")), float(b[2].rstrip("%"))
    call = margin(shown.stdout, 13)  # `main()`: no time of its own, all of main's with callees
    assert len(call) == 1 and float(call[0].rstrip("%")) >= 90.0, shown.stdout
    # Ground truth: 3/4 and 1/4 of main()'s CPU; the rest of the run (start-up, exit: a few
    # percent, more on a loaded machine) is in neither line.
    main_share = float(call[0].rstrip("%"))
    assert abs(share_a - 0.75 * main_share) <= 3.0, shown.stdout
    assert abs(share_b - 0.25 * main_share) <= 3.0, shown.stdout
    assert abs(float(a[0]) - 0.3) <= 0.03 and abs(float(b[0]) - 0.1) <= 0.02
    assert float(a[3].rstrip("%")) == share_a  # cpu mode: every sample ran
    # hot lines are marked when piped (no colour codes)
    hot = [t for t in shown.stdout.splitlines() if ">|" in t]
    assert len(hot) == 2 and "\x1b[" not in shown.stdout
    # explicit FILE by base name, and a function-only line stays unmarked
    again = aether(["annotate", "spin.aprof", "spin.py"], tmp_path)
    assert again.returncode == 0 and margin(again.stdout, SPIN_A)[2] == a[2]
    assert margin(again.stdout, 5) == []  # spin() never ran
    coloured = aether(["annotate", "spin.aprof"], tmp_path, env={**ENV, "FORCE_COLOR": "1"})
    assert coloured.returncode == 0 and "\x1b[" in coloured.stdout


def test_annotate_shows_allocated_bytes(tmp_path: Path) -> None:
    write(tmp_path / "alloc.py", ALLOC)
    done = aether(["memcheck", "-q", "-o", "alloc.heap.aprof", "alloc.py"], tmp_path)
    assert done.returncode == 0, done.stderr
    shown = aether(["annotate", "alloc.heap.aprof"], tmp_path)
    assert shown.returncode == 0, shown.stderr
    cols = margin(shown.stdout, 5)
    value, unit = float(cols[-2]), cols[-1]
    assert unit == "MiB"
    expected = 100 * (100_000 + sys.getsizeof(b"")) / (1 << 20)
    assert abs(value - expected) <= 0.05 * expected, shown.stdout


def test_missing_source_is_annotated_from_the_recording(tmp_path: Path) -> None:
    write(tmp_path / "spin.py", SPIN)
    assert aether(["profile", "-o", "spin.aprof", "spin.py"], tmp_path).returncode == 0
    (tmp_path / "spin.py").unlink()
    shown = aether(["annotate", "spin.aprof"], tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "source file not found" in shown.stdout and "spin.py" in shown.stderr, (shown.stdout, shown.stderr)
    assert "<source not available>" in shown.stdout
    share_a = float(margin(shown.stdout, SPIN_A)[2].rstrip("%"))
    share_b = float(margin(shown.stdout, SPIN_B)[2].rstrip("%"))
    assert abs(100 * share_a / (share_a + share_b) - 75.0) <= 3.0, shown.stdout


def test_html_pages(tmp_path: Path) -> None:
    source = write(tmp_path / "app.py", "import os\n\ndef work():\n    pass  # <b>\n\n\n\n\n\n")
    frames = [Frame("work", str(source), 4, 3)]
    profile = Profile(
        frames,
        [(0,)],
        {},
        stack=[0, 0],
        tid=[1, 1],
        time_ns=[1, 2],
        weight_ns=[MS, MS],
        flags=[0, 0],
        meta=ProfileMeta("cpu", 0.001, 0.0, 0.1, "3.11.7", 2, 0, "app.py"),
    )
    files = annotate(profile)
    assert [f.file for f in files] == [str(source)]
    written = write_pages(files, tmp_path / "html")
    page = written[0].read_text()
    assert 'id="L4" class="hot"' in page and "&lt;b&gt;" in page and "100.0%" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert written[0].name in written[-1].read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["annotate"], "the following arguments are required"),
        (["annotate", "nope.aprof"], "no such file"),
        (["annotate", "junk.aprof"], "junk.aprof"),
        (["annotate", "spin.aprof", "elsewhere.py"], "neither in the recording nor a readable file"),
        (["annotate", "spin.aprof", "--hot", "200"], "--hot"),
    ],
)
def test_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    write(tmp_path / "spin.py", SPIN)
    (tmp_path / "junk.aprof").write_bytes(b"not a profile at all")
    if "spin.aprof" in args:
        assert aether(["profile", "-o", "spin.aprof", "spin.py"], tmp_path).returncode == 0
    done = aether(args, tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aether: error: ") and message in lines[0]
