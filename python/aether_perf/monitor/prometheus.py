"""A Prometheus scrape endpoint for the monitor (prometheus_client, its own registry).

Names follow Prometheus' conventions: base units, ``_ratio`` for fractions, ``_total`` for counters
(Prometheus computes rates itself with ``rate()``, so disk and network go out as the cumulative
byte counters, not our per-interval rates). Every series carries a ``scope`` label ("machine" or
"pid 1234"). Alert rules add ``aether_alert_state{rule=...}``: 0 ok/resolved, 1 warning, 2 critical.
The collector reads the latest sample at scrape time, so a scrape never waits for a measurement.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from aether_perf.errors import InvalidArgument

if TYPE_CHECKING:
    from aether_perf.monitor.metrics import Sample

__all__ = ["GAUGES", "PrometheusExporter", "parse_listen_address"]

#: series -> (metric name, help, scale applied to the value)
GAUGES: dict[str, tuple[str, str, float]] = {
    "cpu_percent": (
        "aether_cpu_usage_ratio",
        "CPU in use: machine, fraction of all CPUs; process tree, CPU-seconds per second",
        0.01,
    ),
    "memory_percent": ("aether_memory_usage_ratio", "Memory in use as a fraction of physical RAM", 0.01),
    "memory_bytes": (
        "aether_memory_used_bytes",
        "Memory in use (machine) or resident set (process tree)",
        1.0,
    ),
    "threads": ("aether_threads", "Threads (machine: all tasks; process tree: all threads)", 1.0),
}
#: counter -> (metric name without _total, help)
COUNTERS: dict[str, tuple[str, str]] = {
    "disk_read_bytes": ("aether_disk_read_bytes", "Bytes read from disk"),
    "disk_write_bytes": ("aether_disk_written_bytes", "Bytes written to disk"),
    "net_recv_bytes": ("aether_network_received_bytes", "Bytes received on all interfaces"),
    "net_sent_bytes": ("aether_network_transmitted_bytes", "Bytes sent on all interfaces"),
}


def parse_listen_address(value: str) -> tuple[str, int]:
    """ "127.0.0.1:9464" or ":9464" (loopback) -> (host, port)."""
    host, sep, port_text = value.rpartition(":")
    if not sep:
        host, port_text = "", value
    host = host.strip("[]") or "127.0.0.1"
    try:
        port = int(port_text)
    except ValueError:
        raise InvalidArgument(f"--prometheus: expected HOST:PORT, got {value!r}") from None
    if not 0 <= port < 65536:
        raise InvalidArgument(f"--prometheus: port {port} out of range")
    return host, port


class _SampleCollector(Collector):
    def __init__(self, exporter: PrometheusExporter) -> None:
        self.exporter = exporter

    def collect(self) -> Iterator[Metric]:
        sample, scope, states = self.exporter.snapshot()
        if sample is not None:
            for series, (name, help_text, scale) in GAUGES.items():
                if series in sample.values:
                    gauge = GaugeMetricFamily(name, help_text, labels=["scope"])
                    gauge.add_metric([scope], sample.values[series] * scale)
                    yield gauge
            for counter, (name, help_text) in COUNTERS.items():
                if counter in sample.counters:
                    counted = CounterMetricFamily(name, help_text, labels=["scope"])
                    counted.add_metric([scope], sample.counters[counter])
                    yield counted
            last = GaugeMetricFamily(
                "aether_last_sample_timestamp_seconds", "When the last sample was taken", labels=["scope"]
            )
            last.add_metric([scope], sample.time)
            yield last
        if states:
            family = GaugeMetricFamily(
                "aether_alert_state",
                "Alert rule state: 0 ok or resolved, 1 warning, 2 critical",
                labels=["scope", "rule"],
            )
            for rule, level in sorted(states.items()):
                family.add_metric([scope, rule], level)
            yield family


class PrometheusExporter:
    """Serve the latest sample on ``http://host:port/metrics``; ``update(sample)`` after each one."""

    def __init__(self, host: str = "127.0.0.1", port: int = 9464, scope: str = "machine") -> None:
        self.scope = scope
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_SampleCollector(self))
        self._lock = threading.Lock()
        self._sample: Sample | None = None
        self._states: dict[str, int] = {}
        self.alert_levels: Callable[[], dict[str, int]] | None = None
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise InvalidArgument(
                f"--prometheus: cannot listen on {host}:{port}: {exc.strerror or exc}"
            ) from None
        self.host = host
        self.port = int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def update(self, sample: Sample, alert_levels: dict[str, int] | None = None) -> None:
        with self._lock:
            self._sample = sample
            if alert_levels is not None:
                self._states = dict(alert_levels)

    def snapshot(self) -> tuple[Sample | None, str, dict[str, int]]:
        with self._lock:
            return self._sample, self.scope, dict(self._states)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(2.0)
