"""Our metrics endpoint scraped by a real Prometheus, our alerts received by a real Alertmanager."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from aether_perf.monitor import AlertSystem, Monitor
from aether_perf.monitor.alerts import Rule
from aether_perf.monitor.channels import AlertmanagerChannel
from aether_perf.monitor.metrics import Sample
from aether_perf.monitor.prometheus import PrometheusExporter
from monitor_servers import (
    Server,
    alertmanager_alerts,
    prometheus_query,
    start_alertmanager,
    start_prometheus,
    wait_for_query,
)
from prometheus_client.parser import text_string_to_metric_families


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_alertmanager(tmp_path_factory.mktemp("alertmanager"))
    try:
        yield server
    finally:
        server.stop()


def test_exposition_names_types_and_values() -> None:
    exporter = PrometheusExporter("127.0.0.1", 0, scope="machine")
    try:
        sample = Sample(
            1_700_000_000.0,
            {"cpu_percent": 37.5, "memory_percent": 42.0, "memory_bytes": 3.0e9, "threads": 321.0},
            {"disk_read_bytes": 1e6, "disk_write_bytes": 2e6, "net_recv_bytes": 3e6, "net_sent_bytes": 4e6},
        )
        exporter.update(sample, {"memory high": 2})
        with urllib.request.urlopen(exporter.url, timeout=5) as response:
            text = response.read().decode()
    finally:
        exporter.close()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    expected = {
        "aether_cpu_usage_ratio": ("gauge", 0.375),
        "aether_memory_usage_ratio": ("gauge", 0.42),
        "aether_memory_used_bytes": ("gauge", 3.0e9),
        "aether_threads": ("gauge", 321.0),
        "aether_disk_read_bytes": ("counter", 1e6),
        "aether_disk_written_bytes": ("counter", 2e6),
        "aether_network_received_bytes": ("counter", 3e6),
        "aether_network_transmitted_bytes": ("counter", 4e6),
    }
    for name, (kind, value) in expected.items():
        family = families[name]
        assert family.type == kind, name
        (point,) = family.samples
        assert point.value == pytest.approx(value) and point.labels == {"scope": "machine"}
        if kind == "counter":
            assert point.name == name + "_total"
    (state,) = families["aether_alert_state"].samples
    assert state.labels == {"scope": "machine", "rule": "memory high"} and state.value == 2


def test_prometheus_scrapes_live_monitor(tmp_path: Path) -> None:
    monitor = Monitor("cpu,memory,io,network,threads", interval=0.2)
    exporter = PrometheusExporter("127.0.0.1", 0, scope="machine")
    prometheus = None
    try:
        import threading

        worker = threading.Thread(target=monitor.run, args=(exporter.update,), daemon=True)
        worker.start()
        prometheus = start_prometheus(tmp_path / "prometheus", [f"127.0.0.1:{exporter.port}"], "1s")
        (up,) = wait_for_query(prometheus, 'up{job="aether"} == 1')
        assert up["metric"]["instance"] == f"127.0.0.1:{exporter.port}"
        (memory,) = wait_for_query(prometheus, 'aether_memory_usage_ratio{scope="machine"}')
        assert float(memory["value"][1]) == pytest.approx(psutil.virtual_memory().percent / 100, abs=0.05)
        (used,) = prometheus_query(prometheus, "aether_memory_used_bytes")
        vm = psutil.virtual_memory()
        assert float(used["value"][1]) == pytest.approx(vm.total - vm.available, rel=0.5)  # shared machine
        (cpu,) = prometheus_query(prometheus, "aether_cpu_usage_ratio")
        assert 0.0 <= float(cpu["value"][1]) <= 1.0
        (threads,) = prometheus_query(prometheus, "aether_threads")
        assert float(threads["value"][1]) >= 10
        (received,) = prometheus_query(prometheus, "aether_network_received_bytes_total")
        assert float(received["value"][1]) == pytest.approx(psutil.net_io_counters().bytes_recv, rel=0.1)
        (written,) = prometheus_query(prometheus, "aether_disk_written_bytes_total")
        assert float(written["value"][1]) >= 0
        # A counter Prometheus can rate(): a few scrapes in, the series has several points.
        deadline = time.monotonic() + 10
        while True:
            series = prometheus_query(prometheus, "count_over_time(aether_threads[1m])")
            if series and float(series[0]["value"][1]) >= 2:
                break
            assert time.monotonic() < deadline, series
            time.sleep(0.25)
    finally:
        monitor.stop()
        if prometheus is not None:
            prometheus.stop()
        exporter.close()


def test_alertmanager_receives_firing_escalated_and_resolved(alertmanager: Server) -> None:
    rule = Rule("aether test memory", "memory_percent", warning=80, critical=90, cooldown=0)
    channel = AlertmanagerChannel(alertmanager.url)
    assert channel.probe() is None
    system = AlertSystem([rule], labels={"scope": "machine", "host": "testhost"})
    now = time.time() - 10  # events from the last seconds, as a live monitor sends them

    def ours() -> dict[str, dict[str, object]]:
        return {
            str(a["labels"]["severity"]): a
            for a in alertmanager_alerts(alertmanager)
            if a["labels"].get("alertname") == "aether test memory"
        }

    (warning,) = system.check(Sample(now, {"memory_percent": 85.0}))
    channel.send(warning)
    alerts = ours()
    assert set(alerts) == {"warning"}
    alert = alerts["warning"]
    assert alert["labels"] == {
        "alertname": "aether test memory",
        "severity": "warning",
        "metric": "memory_percent",
        "job": "aether",
        "scope": "machine",
        "host": "testhost",
    }
    assert alert["annotations"]["summary"] == "WARNING aether test memory: memory_percent = 85.0% >= 80.0%"
    assert alert["annotations"]["value"] == "85"
    assert alert["status"]["state"] == "active"

    (critical,) = system.check(Sample(now + 1, {"memory_percent": 95.0}))
    channel.send(critical)  # also ends the warning alert
    assert set(ours()) == {"critical"}

    (resolved,) = system.check(Sample(now + 2, {"memory_percent": 50.0}))
    assert resolved.state == "resolved"
    channel.send(resolved)
    deadline = time.monotonic() + 10
    while ours():
        assert time.monotonic() < deadline, ours()
        time.sleep(0.2)
