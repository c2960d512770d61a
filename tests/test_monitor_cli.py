"""`aether monitor` end to end: bad input (exit 2, one line), a started program keeps its output
and exit status, --pid of a process that exits, recordings and their HTML report, an unreachable
channel at start-up, and alerts reaching a real Alertmanager while a real Prometheus scrapes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from monitor_servers import (
    alertmanager_alerts,
    free_port,
    start_alertmanager,
    start_prometheus,
    wait_for_query,
)
from workloads import cli_env

ENV = cli_env()
TIMEOUT = 60


def aether(args: Sequence[str], cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aether_native", *args],
        cwd=cwd,
        env=kwargs.pop("env", ENV),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        **kwargs,
    )


def one_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aether: error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


RULES = """\
[[rule]]
name = "memory high"
metric = "memory_percent"
warning = 80
"""


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--metrics", "cpu,gpu"],
            "--metrics: unknown metric 'gpu' (choose from cpu, memory, io, network, threads)",
        ),
        (["--pid", "999999999"], "no process with PID 999999999"),
        (["--interval", "0"], "--interval"),
        (["--prometheus", "127.0.0.1:http"], "--prometheus: expected HOST:PORT"),
        (["--pid", "1", "--", "x.py"], "give either --pid or a program after '--', not both"),
        (["--", "missing.py"], "no such script: 'missing.py'"),
        (["--alerts", "nope.toml"], "no such rules file: 'nope.toml'"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_input_exit_2(tmp_path: Path, args: list[str], expected: str) -> None:
    assert expected in one_error(aether(["monitor", "--no-tui", "--duration", "1s", *args], tmp_path))


def test_malformed_rules_name_line_and_key(tmp_path: Path) -> None:
    (tmp_path / "rules.toml").write_text(RULES + 'critical = "very"\n')
    line = one_error(aether(["monitor", "--no-tui", "--alerts", "rules.toml"], tmp_path))
    assert line == (
        "aether: error: rules.toml:5: rule 'memory high': key 'critical': must be a number, got 'very'"
    )
    (tmp_path / "rules.toml").write_text(RULES.replace('metric = "memory_percent"', 'metric = "cpu" "x"'))
    assert re.fullmatch(
        r"aether: error: rules.toml:3: TOML syntax error: .*",
        one_error(aether(["monitor", "--no-tui", "--alerts", "rules.toml"], tmp_path)),
    )
    (tmp_path / "rules.toml").write_text(RULES)
    line = one_error(aether(["monitor", "--no-tui", "--metrics", "cpu", "--alerts", "rules.toml"], tmp_path))
    assert "rule 'memory high' watches memory_percent, which --metrics cpu does not collect" in line


def test_record_refuses_foreign_file(tmp_path: Path) -> None:
    (tmp_path / "notes.jsonl").write_text("my notes\n")
    line = one_error(
        aether(["monitor", "--no-tui", "--duration", "0.3s", "--record", "notes.jsonl"], tmp_path)
    )
    assert "refusing to overwrite" in line
    assert (tmp_path / "notes.jsonl").read_text() == "my notes\n"


PROGRAM = textwrap.dedent(
    """
    import sys, time
    block = bytearray(120 << 20)
    for i in range(0, len(block), 4096):
        block[i] = 1
    print("program output", flush=True)
    print("program error", file=sys.stderr, flush=True)
    time.sleep(1.2)
    sys.exit(7)
    """
)


def test_program_keeps_output_and_status_and_recording_reports(tmp_path: Path) -> None:
    (tmp_path / "prog.py").write_text(PROGRAM)
    result = aether(
        [
            "monitor",
            "--no-tui",
            "--interval",
            "0.2s",
            "--metrics",
            "memory,threads",
            "--record",
            "m.jsonl",
            "--",
            "prog.py",
        ],
        tmp_path,
    )
    assert result.returncode == 7, result.stderr
    assert "program output" in result.stdout and "program error" in result.stderr
    assert "aether: the monitored program exited with status 7" in result.stderr
    lines = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    header, samples = lines[0], [line for line in lines[1:] if "t" in line]
    assert header["kind"] == "aether-metrics" and header["scope"].startswith("pid ")
    assert set(header["series"]) == {"memory_percent", "memory_bytes", "threads"}
    assert len(samples) >= 3
    peak = max(s["v"]["memory_bytes"] for s in samples)
    assert 120 << 20 <= peak <= (120 << 20) + (80 << 20)  # the 120 MiB block and one interpreter
    assert all(s["v"]["threads"] == 1 for s in samples)
    # plain lines: one per sample
    assert len([line for line in result.stdout.splitlines() if " mem " in f" {line}"]) == len(samples)

    text = aether(["perf-report", "--input", "m.jsonl"], tmp_path)
    assert text.returncode == 0, text.stderr
    assert re.search(r"memory_bytes\s+min .* max 1\d\d(\.\d+)?MiB", text.stdout), text.stdout

    html = aether(["perf-report", "--input", "m.jsonl", "--format", "html"], tmp_path)
    assert html.returncode == 0, html.stderr
    page = (tmp_path / "m.html").read_text()
    assert "<script" not in page and "http" not in page.replace("http-equiv", "")  # self-contained
    for series in ("memory_percent", "memory_bytes", "threads"):
        points = re.search(rf'<polyline data-series="{series}" points="([^"]*)"', page)
        assert points is not None
        assert len(points[1].split()) == len(samples)
    svg = re.search(
        r'<svg [^>]*data-min="([^"]+)" data-max="([^"]+)"[^>]*><polyline data-series="memory_bytes" '
        r'points="([^"]*)"',
        page,
    )
    assert svg is not None
    low, high = float(svg[1]), float(svg[2])
    assert high == pytest.approx(peak)  # the chart's top is the peak...
    ys = [float(p.split(",")[1]) for p in svg[3].split()]
    assert min(ys) == pytest.approx(4.0)  # ...drawn at the top of the plot box
    assert low == 0.0
    bad = aether(["perf-report", "--input", "m.jsonl", "--format", "pprof"], tmp_path)
    assert "not available for metrics recordings" in one_error(bad)


def test_pid_that_exits(tmp_path: Path) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(2.5)"])
    try:
        result = aether(["monitor", "--no-tui", "--interval", "0.2s", "--pid", str(sleeper.pid)], tmp_path)
    finally:
        sleeper.wait()
    assert result.returncode == 0, result.stderr
    assert re.search(
        rf"aether: process {sleeper.pid} exited; monitoring stopped after \d+\.\ds", result.stderr
    )
    assert len(result.stdout.splitlines()) >= 2


def test_unreachable_channel_warns_and_keeps_running(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "rules.toml").write_text(
        '[[rule]]\nname = "threads exist"\nmetric = "threads"\nwarning = 1\n\n'
        f'[channels.webhook]\nurl = "http://127.0.0.1:{port}/hook"\ntimeout = 1\n'
    )
    result = aether(
        ["monitor", "--no-tui", "--interval", "0.2s", "--duration", "1.2s", "--alerts", "rules.toml"],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert f"aether: warning: alert channel webhook: cannot connect to 127.0.0.1:{port}" in result.stderr
    assert "will retry when alerts fire" in result.stderr
    assert "aether: warning: alert channel webhook: gave up on 'threads exist'" in result.stderr
    assert "alert: WARNING threads exist: threads = " in result.stdout
    assert len([line for line in result.stdout.splitlines() if "threads " in line]) >= 5  # kept sampling


def test_alerts_reach_alertmanager_while_prometheus_scrapes(tmp_path: Path) -> None:
    alertmanager = start_alertmanager(tmp_path / "am")
    port = free_port()
    prometheus = start_prometheus(tmp_path / "prom", [f"127.0.0.1:{port}"], "1s")
    monitor = None
    try:
        (tmp_path / "rules.toml").write_text(
            '[[rule]]\nname = "aether cli threads"\nmetric = "threads"\nwarning = 1\ncritical = 1000000\n\n'
            f'[channels.alertmanager]\nurl = "{alertmanager.url}"\n'
        )
        monitor = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aether_native",
                "monitor",
                "--no-tui",
                "--interval",
                "0.25s",
                "--metrics",
                "threads,memory",
                "--alerts",
                "rules.toml",
                "--prometheus",
                f"127.0.0.1:{port}",
                "--duration",
                "20s",
            ],
            cwd=tmp_path,
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        (state,) = wait_for_query(prometheus, 'aether_alert_state{rule="aether cli threads"}')
        assert float(state["value"][1]) == 1.0  # warning
        assert state["metric"]["scope"] == "machine"
        deadline = time.monotonic() + 10
        while True:
            ours = [
                a
                for a in alertmanager_alerts(alertmanager)
                if a["labels"]["alertname"] == "aether cli threads"
            ]
            if ours or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        (alert,) = ours
        assert alert["labels"]["severity"] == "warning" and alert["labels"]["metric"] == "threads"
        assert alert["annotations"]["summary"].startswith("WARNING aether cli threads: threads = ")
        assert alert["status"]["state"] == "active"
    finally:
        if monitor is not None:
            monitor.terminate()
            monitor.wait(10)
        prometheus.stop()
        alertmanager.stop()


def test_help_lists_monitor_and_series(tmp_path: Path) -> None:
    top = aether(["--help"], tmp_path)
    assert top.returncode == 0 and "  monitor      watch the machine" in top.stdout
    result = aether(["monitor", "--help"], tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("usage: aether monitor")
    for option in (
        "--pid",
        "--metrics",
        "--interval",
        "--history",
        "--alerts",
        "--prometheus",
        "--record",
        "--no-tui",
        "--duration",
    ):
        assert option in result.stdout
    assert "cpu_percent, memory_percent, memory_bytes, disk_read_rate" in " ".join(result.stdout.split())
