"""`aether load` end to end: `python -m aether_native load ...` in a subprocess against a loopback server."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aether_perf.load import LoadTestResult
from load_server import Server
from workloads import cli_env

ENV = cli_env()
SCENARIO = """\
from aether_perf.load import Scenario, transaction

@transaction(weight=2)
async def browse(client):
    await client.get("/items")

@transaction
async def buy(client):
    await client.post("/buy", data="1")

scenario = Scenario("shop", users=4, duration="1s", transactions=[browse, buy])
"""


def aether(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aether_native", "load", *args],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=cwd,
        timeout=120,
    )


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "shop.py"
    path.write_text(SCENARIO)
    return path


def test_thresholds_pass_reports_are_written(scenario_file: Path, tmp_path: Path) -> None:
    with Server("--latency", "5", "15") as url:
        done = aether(
            str(scenario_file),
            "--host",
            url,
            "--threshold",
            "p95<500ms",
            "--threshold",
            "errors<1%",
            "--json",
            "out.json",
            "--html",
            "out.html",
            cwd=tmp_path,
        )
    assert done.returncode == 0, done.stderr
    assert "browse" in done.stdout and "sustained" in done.stdout and "ok  p95<500ms" in done.stdout
    result = LoadTestResult.from_json((tmp_path / "out.json").read_text())
    assert result.total.count > 50 and result.total.error_count == 0
    assert set(result.transactions) == {"browse", "buy"}
    p95 = result.total.corrected.percentile(95) / 1e6
    assert 12 < p95 < 100  # injected 5..15 ms (plus what a busy shared machine adds)
    page = (tmp_path / "out.html").read_text()
    assert page.count("<svg") == 2 and "Latency over time" in page
    assert "src=" not in page and "href=" not in page and "<script" not in page  # self-contained


def test_a_failing_threshold_exits_1_and_is_named(scenario_file: Path, tmp_path: Path) -> None:
    with Server("--latency", "20", "30") as url:
        done = aether(
            str(scenario_file),
            "--host",
            url,
            "--users",
            "2",
            "--threshold",
            "p50<5ms",
            "--threshold",
            "errors<1%",
            cwd=tmp_path,
        )
    assert done.returncode == 1
    failed = [line for line in done.stderr.splitlines() if "threshold failed" in line]
    assert len(failed) == 1 and "p50<5ms" in failed[0]


def test_unreachable_target_is_reported_as_errors(scenario_file: Path, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        done = aether(
            str(scenario_file),
            "--host",
            f"http://127.0.0.1:{s.getsockname()[1]}",
            "--duration",
            "0.5s",
            cwd=tmp_path,
        )
    assert done.returncode == 1
    assert "connection refused" in done.stdout
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith("aether: error: no transaction succeeded (connection refused")
    )
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("x = 1\n", [], "defines no Scenario"),
        ("def broken(:\n", [], "broken.py:1: syntax error"),
        ("raise RuntimeError('boom')\n", [], "broken.py:1: RuntimeError: boom"),
        (SCENARIO, ["--rate", "0/s"], "greater than zero"),
        (SCENARIO, ["--rate", "9000000/s"], "impossible"),
        (SCENARIO, ["--threshold", "p95<<1s"], "at position 5"),
        (SCENARIO, ["--threshold", "p95[pay]<1s"], "names transaction 'pay'"),
        (SCENARIO, [], "has no host"),
        (SCENARIO, ["--host", "ftp://x"], "http:// or https://"),
        (
            SCENARIO,
            ["--host", "http://127.0.0.1:1", "--users", "1", "--workers", "2"],
            "need at least 2 users",
        ),
    ],
    ids=[
        "no-scenario",
        "syntax",
        "raises",
        "zero-rate",
        "huge-rate",
        "threshold-syntax",
        "threshold-name",
        "no-host",
        "bad-host",
        "workers",
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, content: str, args: list[str], message: str) -> None:
    path = tmp_path / "broken.py"
    path.write_text(content)
    done = aether(str(path), *args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aether: error: ") and message in lines[0], lines


def test_missing_scenario_file(tmp_path: Path) -> None:
    done = aether("nope.py", "--host", "http://127.0.0.1:1", cwd=tmp_path)
    assert done.returncode == 2 and "does not exist" in done.stderr


def test_does_not_overwrite_the_scenario(scenario_file: Path, tmp_path: Path) -> None:
    done = aether(
        str(scenario_file), "--host", "http://127.0.0.1:1", "--json", str(scenario_file), cwd=tmp_path
    )
    assert done.returncode == 2 and "refusing to overwrite" in done.stderr
    assert scenario_file.read_text() == SCENARIO


def test_profile_target_saves_the_servers_profile_beside_the_report(
    scenario_file: Path, tmp_path: Path
) -> None:
    from aether_perf.model import load

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = Path(__file__).resolve().parent / "load_server.py"
    done = aether(
        str(scenario_file),
        "--host",
        f"http://127.0.0.1:{port}",
        "--duration",
        "1.5s",
        "--html",
        "load.html",
        "--profile-target",
        f"{server} --port {port} --latency 1 3",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "wrote the target's profile" in done.stderr
    profile = load(tmp_path / "load.aprof")
    assert (tmp_path / "load.log").exists() and (tmp_path / "load.html").exists()
    # The server's request handler is in the profile: the sampler ran inside the target.
    names = {(f.function, Path(f.file).name) for f in profile.frames}
    assert ("serve.<locals>.handle", "load_server.py") in names
    assert profile.meta.mode == "wall"


def test_help(tmp_path: Path) -> None:
    done = aether("--help", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("usage: aether load") and done.stderr == ""
    assert "--threshold" in done.stdout and "--profile-target" in done.stdout
    top = subprocess.run(
        [sys.executable, "-m", "aether_native", "--help"],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=tmp_path,
    )
    assert "aether load scenario.py" in top.stdout


@pytest.mark.parametrize("workers", ["1", "2"])
def test_ctrl_c_reports_what_ran_so_far(scenario_file: Path, tmp_path: Path, workers: str) -> None:
    with Server("--latency", "5", "10") as url:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aether_native",
                "load",
                str(scenario_file),
                "--host",
                url,
                "--duration",
                "60s",
                "--workers",
                workers,
                "--json",
                "out.json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
            cwd=tmp_path,
        )
        time.sleep(2.5)
        proc.send_signal(signal.SIGINT)  # as Ctrl-C, but to the parent only: it stops its workers itself
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "INTERRUPTED" in out and "sustained" in out and "Traceback" not in err
    assert "results above are partial" in err.strip().splitlines()[-1]
    result = LoadTestResult.from_json((tmp_path / "out.json").read_text())
    assert result.interrupted and result.total.count > 20 and result.total.error_count == 0
    assert 0.5 < result.duration < 10  # the time it ran, not the 60 s planned
