"""`aether stat` end to end: `python -m aether_native stat ...` in a subprocess.

Ground truth: a script that touches a known number of fresh pages, sleeps a known number of times
and exits with a known status; its stdout must pass through untouched.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from workloads import cli_env

ENV = cli_env()
TIMEOUT = 120
PAGES = 3000
SLEEPS = 20

SCRIPT = f"""\
import mmap, sys, time
region = mmap.mmap(-1, {PAGES} * mmap.PAGESIZE)
region.madvise(mmap.MADV_NOHUGEPAGE)
for offset in range(0, len(region), mmap.PAGESIZE):
    region[offset] = 1
for _ in range({SLEEPS}):
    time.sleep(0.002)
end = time.process_time() + 0.5
while time.process_time() < end:
    pass
print("out:", sys.argv[1:])
sys.exit(3)
"""


def aether(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aether_native", *args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def test_stat_counts_the_program_and_keeps_its_status_and_output(tmp_path: Path) -> None:
    (tmp_path / "prog.py").write_text(SCRIPT)
    done = aether(
        "stat",
        "-e",
        "task-clock,page-faults,cs,instructions",
        "--json",
        "out.json",
        "--",
        "prog.py",
        "a",
        "-e",
        cwd=tmp_path,
    )
    assert done.returncode == 3, done.stderr
    assert done.stdout == "out: ['a', '-e']\n"
    assert "Performance counter stats for 'prog.py a -e'" in done.stderr
    assert "task-clock" in done.stderr and "CPUs utilized" in done.stderr
    data = json.loads((tmp_path / "out.json").read_text())
    assert data["exit_status"] == 3
    events = {event["name"]: event for event in data["reading"]["events"]}
    assert events["page-faults"]["value"] >= PAGES
    assert events["context-switches"]["value"] >= SLEEPS
    assert 0.25e9 <= events["task-clock"]["value"] <= 1.0e9
    if not events["instructions"]["available"]:
        assert events["instructions"]["value"] is None
        assert "<not supported>      instructions" in done.stderr
        assert events["instructions"]["reason"].split(":")[0] in done.stderr


def test_interval_lines_and_analysis_in_chinese(tmp_path: Path) -> None:
    (tmp_path / "prog.py").write_text(SCRIPT)
    done = aether(
        "stat",
        "--interval",
        "100ms",
        "--analyze",
        "--lang",
        "zh",
        "--json",
        "o.json",
        "prog.py",
        cwd=tmp_path,
    )
    assert done.returncode == 3, done.stderr
    data = json.loads((tmp_path / "o.json").read_text())
    assert len(data["intervals"]) >= 2  # 0.5 s of CPU in 100 ms intervals (fewer when starved)
    assert len(data["interval_findings"]) == len(data["intervals"])  # the rules run on every delta
    total = sum(
        next(e["value"] for e in interval["events"] if e["name"] == "task-clock")
        for interval in data["intervals"]
    )
    final = next(e["value"] for e in data["reading"]["events"] if e["name"] == "task-clock")
    assert abs(total - final) <= 0.02 * final  # the intervals add up to the whole
    assert done.stderr.count("task-clock") >= len(data["intervals"]) + 1
    assert "瓶颈分析" in done.stderr
    rules = {finding["rule"]: finding for finding in data["findings"]}
    if rules["cpu.low-ipc"]["evaluated"] is False:
        assert "未评估" in done.stderr


def test_per_thread_table_and_fork_note(tmp_path: Path) -> None:
    script = "import threading\nt = threading.Thread(target=lambda: sum(range(3_000_000)), name='crunch')\n"
    script += "import time\nt.start(); t.join()\n"
    (tmp_path / "t.py").write_text(script)
    done = aether("stat", "--per-thread", "-e", "task-clock", "t.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Per thread:" in done.stderr
    assert "forked child processes are not counted" in done.stderr


def test_bad_inputs_exit_2_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "prog.py").write_text("print('ran')\n")
    cases = [
        (("stat", "-e", "cycels", "prog.py"), "unknown event 'cycels' (known events: "),
        (("stat", "--lang", "zh", "prog.py"), "give --analyze too"),
        (("stat", "--interval", "0", "prog.py"), "--interval"),
        (("stat", "--json", "-", "prog.py"), "stdout"),
        (("stat", "missing.py"), "can't open file 'missing.py'"),
        (("stat",), "nothing to run"),
    ]
    for args, message in cases:
        done = aether(*args, cwd=tmp_path)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stdout == "", args
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("aether: error: "), (args, done.stderr)
        assert message in lines[0], (args, lines[0])


def test_a_forked_child_is_counted_and_prints_no_table_of_its_own(tmp_path: Path) -> None:
    script = """\
import os, sys, time
pid = os.fork()
if pid == 0:
    end = time.process_time() + 0.5
    while time.process_time() < end:
        pass
    sys.exit(0)  # runs off the end of the runner in the child: it must stay quiet
os.waitpid(pid, 0)
"""
    (tmp_path / "f.py").write_text(script)
    done = aether("stat", "-e", "task-clock", "--json", "f.json", "f.py", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("Performance counter stats") == 1
    assert "child processes started by the program (inherit)" in done.stderr
    data = json.loads((tmp_path / "f.json").read_text())
    task = next(e for e in data["reading"]["events"] if e["name"] == "task-clock")
    assert task["value"] >= 0.28e9  # the child's CPU, folded in through inherit
