"""Real Prometheus and Alertmanager (Debian packages `prometheus`, `prometheus-alertmanager`) on
127.0.0.1 for the monitor tests: temp config and storage, a free port, kept off the network
(loopback listeners only, no remote write, Alertmanager clustering off), stopped by the tests."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

PROMETHEUS = shutil.which("prometheus")
ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.load(response)


class Server:
    def __init__(self, command: list[str], url: str, ready_path: str, log: Path) -> None:
        self.url = url
        self.log = log
        self._log_handle = log.open("wb")
        self.process = subprocess.Popen(command, stdout=self._log_handle, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"{command[0]} exited: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url + ready_path, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{command[0]} not ready: {log.read_text()[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log_handle.close()


def start_prometheus(directory: Path, targets: list[str], scrape_interval: str = "1s") -> Server:
    assert PROMETHEUS is not None, "the prometheus package is not installed (scripts/test.sh installs it)"
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = directory / "prometheus.yml"
    config.write_text(
        "global:\n"
        f"  scrape_interval: {scrape_interval}\n"
        f"  evaluation_interval: {scrape_interval}\n"
        "scrape_configs:\n"
        "  - job_name: aether\n"
        "    static_configs:\n"
        f"      - targets: {json.dumps(targets)}\n"
    )
    command = [
        PROMETHEUS,
        f"--config.file={config}",
        f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1h",
        "--log.level=warn",
    ]
    return Server(command, f"http://127.0.0.1:{port}", "/-/ready", directory / "prometheus.log")


def start_alertmanager(directory: Path) -> Server:
    assert ALERTMANAGER is not None, "the prometheus-alertmanager package is not installed"
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = directory / "alertmanager.yml"
    config.write_text("route:\n  receiver: nobody\nreceivers:\n  - name: nobody\n")
    command = [
        ALERTMANAGER,
        f"--config.file={config}",
        f"--storage.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",  # no gossip: this Alertmanager talks to nobody
        "--log.level=warn",
    ]
    return Server(command, f"http://127.0.0.1:{port}", "/-/ready", directory / "alertmanager.log")


def prometheus_query(server: Server, query: str) -> list[dict[str, Any]]:
    data = get_json(f"{server.url}/api/v1/query?query={urllib.parse.quote(query)}")
    assert data["status"] == "success", data
    return list(data["data"]["result"])


def wait_for_query(server: Server, query: str, timeout: float = 20.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        result = prometheus_query(server, query)
        if result:
            return result
        if time.monotonic() > deadline:
            targets = get_json(f"{server.url}/api/v1/targets")
            raise AssertionError(f"no result for {query!r}; targets: {targets}")
        time.sleep(0.25)


def alertmanager_alerts(server: Server) -> list[dict[str, Any]]:
    return list(get_json(f"{server.url}/api/v2/alerts"))
