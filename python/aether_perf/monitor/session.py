"""One monitoring run wired together: sample -> alerts -> Prometheus -> recording.

The dashboard, the plain-line printer and library users all feed samples through
``MonitorSession.handle``, so every front end applies the same alerts and writes the same files.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from aether_perf.monitor.alerts import AlertEvent, AlertSystem
from aether_perf.monitor.metrics import Sample
from aether_perf.monitor.monitor import Monitor

if TYPE_CHECKING:
    from aether_perf.monitor.prometheus import PrometheusExporter
    from aether_perf.monitor.record import Recorder

__all__ = ["MonitorSession"]


class MonitorSession:
    def __init__(
        self,
        monitor: Monitor,
        alerts: AlertSystem | None = None,
        exporter: PrometheusExporter | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self.monitor = monitor
        self.alerts = alerts
        self.exporter = exporter
        self.recorder = recorder
        self.last: Sample | None = None
        self.listeners: list[Callable[[Sample, list[AlertEvent]], object]] = []
        #: Warnings to show the user (a channel that gave up), newest last.
        self.notes: list[str] = []

    def handle(self, sample: Sample) -> list[AlertEvent]:
        """Apply alerts to ``sample``, publish and record it; return the alert events it caused."""
        self.last = sample
        events = self.alerts.check(sample) if self.alerts is not None else []
        if self.exporter is not None:
            levels = (
                {r.name: self.alerts.level(r.name) for r in self.alerts.rules}
                if self.alerts is not None
                else None
            )
            self.exporter.update(sample, levels)
        if self.recorder is not None:
            self.recorder.sample(sample)
            for event in events:
                self.recorder.alert(event)
        for listener in self.listeners:
            listener(sample, events)
        return events

    def metric_level(self, series: str) -> int:
        """The worst alert level (0-2) among the rules that watch ``series``."""
        if self.alerts is None:
            return 0
        return max((self.alerts.level(r.name) for r in self.alerts.rules if r.metric == series), default=0)

    def forecasts(self) -> list[str]:
        if self.alerts is None:
            return []
        return [text for r in self.alerts.rules if (text := self.alerts.forecast(r.name)) is not None]
