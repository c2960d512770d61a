"""`engine="locust"`: the same scenario, run headless by locust (from PyPI), agrees with the native engine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from aether_perf.load.loader import load_scenario
from load_server import Server
from workloads import cli_env

SCENARIO = """\
from aether_perf.load import Scenario, transaction

@transaction(weight=3)
async def browse(client):
    reply = await client.get("/items")
    assert reply.text == "ok"  # the body; a status >= 400 counts as an error by itself

@transaction
def buy(client):  # a plain callable works too
    pass

scenario = Scenario("shop", users=10, duration="2s", transactions=[browse])
"""


def test_locust_engine_agrees_with_the_native_engine(tmp_path: Path) -> None:
    path = tmp_path / "shop.py"
    path.write_text(SCENARIO)
    scenario = load_scenario(path)
    with Server("--latency", "50", "150") as url:  # long enough that either engine's overhead is small
        native = scenario.run(host=url)
        locust = scenario.run(host=url, engine="locust")
    assert locust.engine == "locust" and native.engine == "native"
    assert locust.total.error_count == 0 and native.total.error_count == 0
    assert locust.sustained.peak_users == 10
    for q in (50, 90, 95):
        a, b = native.total.corrected.percentile(q), locust.total.corrected.percentile(q)
        assert abs(a - b) <= 0.2 * a, (q, a, b)
    assert abs(native.throughput - locust.throughput) <= 0.2 * native.throughput


def test_locust_engine_through_the_cli_reports_errors_by_kind(tmp_path: Path) -> None:
    path = tmp_path / "shop.py"
    path.write_text(SCENARIO)
    with Server("--status", "500") as url:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "aether_native",
                "load",
                str(path),
                "--host",
                url,
                "--engine",
                "locust",
                "--duration",
                "1s",
                "--users",
                "2",
                "--json",
                "r.json",
            ],
            capture_output=True,
            text=True,
            env=cli_env(),
            cwd=tmp_path,
            timeout=120,
        )
    assert done.returncode == 1, done.stderr  # nothing succeeded
    assert "HTTP 500" in done.stdout and "engine locust" in done.stdout
    assert "no transaction succeeded (HTTP 500" in done.stderr
