"""`aether profile --locks --io --sched` end to end: stored in the profile, printed by perf-report,
shown in the HTML report beside the flamegraph."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from aether_perf.analysis import concurrency
from aether_perf.model import load
from workloads import cli_env

ENV = cli_env()
TIMEOUT = 120
HOLD = 0.01
ROUNDS = 10

TARGET = f"""
import os, sys, threading, time

lock = threading.Lock()
barrier = threading.Barrier(2)

def worker():
    for _ in range({ROUNDS}):
        barrier.wait()
        with lock:
            time.sleep({HOLD})

threads = [threading.Thread(target=worker, name=f"pool-{{i}}") for i in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
with open(sys.argv[1], "wb") as f:
    for _ in range(16):
        f.write(b"x" * 65536)
    f.flush()
    os.fsync(f.fileno())
print("result", 42)
sys.exit(3)
"""


def aether(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aether_native", *args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    tmp = tmp_path_factory.mktemp("conc")
    script = tmp / "prog.py"
    script.write_text(textwrap.dedent(TARGET))
    out = tmp / "run.aprof"
    args = ["profile", "--mode", "wall", "--locks", "--io", "--sched", "-o", str(out), str(script)]
    result = aether([*args, "data.bin"], tmp)
    return out, result


def test_profile_stores_locks_io_and_sched_and_keeps_the_program_behaviour(
    recorded: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    out, result = recorded
    assert result.returncode == 3, result.stderr
    assert result.stdout == "result 42\n"
    assert "locks.contended" in result.stderr
    data = concurrency.load(load(out))
    assert data.locks is not None and data.io is not None and data.sched is not None
    [fought] = [s for s in data.locks if s.name.endswith("prog.py:4")]  # not the Barrier's lock (line 5)
    assert fought.acquisitions == 2 * ROUNDS and fought.contended == ROUNDS
    assert fought.wait_total_ns == pytest.approx(ROUNDS * HOLD * 1e9, rel=0.3)
    target = data.io.target(str(out.parent / "data.bin"))
    assert target.op("write").bytes == 16 * 65536
    assert target.op("fsync").count == 1
    names = {t.name for t in data.sched.threads}
    assert {"pool-0", "pool-1"} <= names
    assert all(t.voluntary >= ROUNDS for t in data.sched.threads if t.name.startswith("pool-"))
    # our own poller thread is not in the profile
    profile = load(out)
    sampled = {f for stack in profile.stack.tolist() for f in profile.stacks[stack]}
    assert all(profile.frames[f].function != "SchedMonitor._loop" for f in sampled)


Recorded = tuple[Path, subprocess.CompletedProcess[str]]


def test_perf_report_text_prints_the_findings(recorded: Recorded) -> None:
    out, _ = recorded
    result = aether(["perf-report", str(out), "--top", "3"], out.parent)
    assert result.returncode == 0, result.stderr
    assert re.search(r"Findings \(\d+\)", result.stdout)
    assert "locks.contended" in result.stdout and "prog.py:4" in result.stdout
    titles = ("Locks (most waited first)", "Thread scheduling over", "I/O by file and peer", "GIL by thread")
    assert all(title in result.stdout for title in titles)
    # the program's own file, not aether's reads (thread names, /proc polling, the script itself)
    assert "data.bin" in result.stdout and "/proc/self" not in result.stdout


def test_html_report_shows_the_tables_beside_the_flamegraph(
    recorded: tuple[Path, subprocess.CompletedProcess[str]], browser: Any
) -> None:
    out, _ = recorded
    html = out.with_suffix(".html")
    result = aether(["perf-report", str(out), "--format", "html", "-o", str(html)], out.parent)
    assert result.returncode == 0, result.stderr
    page = html.read_text()
    match = re.search(r'<script type="application/json" id="aether-data">(.*?)</script>', page, re.S)
    assert match is not None
    analyses = json.loads(match.group(1))["analyses"]
    titles = [t["title"] for t in analyses["tables"]]
    assert titles[0].startswith("Locks") and any(t.startswith("Thread scheduling") for t in titles)
    assert any(t.startswith("I/O") for t in titles) and any(t.startswith("GIL") for t in titles)
    assert "locks.contended" in {f["rule"] for f in analyses["findings"]}
    _check_in_browser(browser, html)


def _check_in_browser(browser: Any, html: Path) -> None:
    page: Any = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(html.resolve().as_uri())
    page.wait_for_selector("body[data-ready]", timeout=60_000)
    assert page.locator("#analyses").is_visible()
    text = str(page.text_content("#analyses"))
    assert "locks.contended" in text and "Thread scheduling" in text
    assert page.locator("#analyses table").count() == 4
    assert errors == []
    page.close()


def test_profiles_without_the_data_print_as_before_and_bad_data_is_one_line(tmp_path: Path) -> None:
    script = tmp_path / "plain.py"
    script.write_text("sum(range(100000))\n")
    out = tmp_path / "plain.aprof"
    assert aether(["profile", "-q", "-o", str(out), str(script)], tmp_path).returncode == 0
    report = aether(["perf-report", str(out)], tmp_path)
    assert report.returncode == 0 and "Findings" not in report.stdout
    profile = load(out)
    profile.meta.extra["concurrency"] = {"version": 99}
    bad = tmp_path / "bad.aprof"
    profile.save(bad)
    result = aether(["perf-report", str(bad)], tmp_path)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aether: error: ") and "version 99" in lines[0]
