"""Live monitoring: psutil collectors, threshold and trend alerts, channels, Prometheus, recording.

    from aether_perf.monitor import Monitor, AlertSystem, Rule
    alerts = AlertSystem([Rule("mem", "memory_percent", warning=80, critical=90, for_=30)], channels)
    Monitor("cpu,memory", interval="1s").run(lambda sample: alerts.check(sample))

The dashboard (textual) and the Prometheus exporter (prometheus_client) are imported only by
those who use them: ``aether_perf.monitor.dashboard`` and ``aether_perf.monitor.prometheus``.
"""

from aether_perf.monitor.alerts import AlertEvent, AlertSystem, Rule
from aether_perf.monitor.channels import Dispatcher
from aether_perf.monitor.metrics import GROUPS, SERIES, ProcessGone, Sample, parse_metrics
from aether_perf.monitor.monitor import Monitor
from aether_perf.monitor.rules import load_rules
from aether_perf.monitor.trend import fit_trend, time_to_cross

__all__ = [
    "GROUPS",
    "SERIES",
    "AlertEvent",
    "AlertSystem",
    "Dispatcher",
    "Monitor",
    "ProcessGone",
    "Rule",
    "Sample",
    "fit_trend",
    "load_rules",
    "parse_metrics",
    "time_to_cross",
]
