"""The full-screen dashboard (textual): one row per series, alerts, forecasts; keys p + - q.

Sampling runs on a worker thread (``Monitor.run``) and hands each sample to the UI thread with
``call_from_thread``, so a slow screen never delays a sample and the keys act at once: ``p``
pauses, ``+``/``-`` double or halve the interval, ``q`` quits. Each row shows the current,
average and peak value over the history, a sparkline, and is coloured by the worst alert state of
the rules watching it. Textual is imported only here, so the library works without it.
"""

from __future__ import annotations

import time
from typing import Any

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Footer, Static

from aether_perf.monitor.display import SHORT, format_value, gauge, sparkline, stats
from aether_perf.monitor.metrics import SERIES, ProcessGone, Sample
from aether_perf.monitor.monitor import MAX_INTERVAL, MIN_INTERVAL
from aether_perf.monitor.session import MonitorSession
from aether_perf.units import format_duration

try:  # textual >= 2 parses its own markup; its escape matches rich's for older versions
    from textual.markup import escape
except ImportError:  # pragma: no cover - older textual
    from rich.markup import escape

__all__ = ["Dashboard"]

_LEVEL_STYLE = {0: "green", 1: "yellow", 2: "bold red"}
_STATE_STYLE = {
    "ok": "green",
    "resolved": "green",
    "warning": "yellow",
    "critical": "bold red",
    "predicted": "cyan",
}


class Dashboard(App[int]):
    """``Dashboard(session, duration=None).run()``; the return value is the exit reason's status."""

    TITLE = "aether monitor"
    CSS = """
    Screen { layout: vertical; }
    #status { height: 1; background: $boost; }
    #rows { height: auto; }
    .row { height: 1; }
    #alerts { height: auto; margin-top: 1; }
    """
    BINDINGS = [  # noqa: RUF012 - textual's declared class attribute
        Binding("p", "pause", "pause/resume"),
        Binding("plus,equals_sign", "faster", "interval /2"),
        Binding("minus", "slower", "interval x2"),
        Binding("q", "quit", "quit"),
    ]

    def __init__(
        self, session: MonitorSession, *, duration: float | None = None, history_rows: int = 6
    ) -> None:
        super().__init__()
        self.session = session
        self.duration = duration
        self.history_rows = history_rows
        self.ended: str | None = None  # why sampling stopped, for the caller
        self.error: BaseException | None = None

    def compose(self) -> ComposeResult:
        yield Static(self._status_text(), id="status")
        with Vertical(id="rows"):
            for series in self.session.monitor.series:
                yield Static(SHORT[series], id=f"row-{series}", classes="row")
        yield Static("", id="alerts")
        yield Footer()

    def on_mount(self) -> None:
        self.run_worker(self._sample_loop, thread=True, exclusive=True, name="sampler")

    def _sample_loop(self) -> None:
        monitor = self.session.monitor
        try:
            monitor.run(self._from_thread, duration=self.duration)
            if not monitor.stopped:
                self.ended = "duration"
        except ProcessGone as exc:
            self.ended = str(exc)
        except BaseException as exc:  # reported by the CLI after the screen is restored
            self.error = exc
        try:
            self.call_from_thread(self.exit, 0)
        except RuntimeError:  # already exiting
            pass

    def _from_thread(self, sample: Sample) -> None:
        events = self.session.handle(sample)
        if not self.session.monitor.stopped:
            try:
                self.call_from_thread(self.show, sample, events)
            except RuntimeError:  # the app is gone (closed from elsewhere): stop sampling
                self.session.monitor.stop()

    def on_unmount(self) -> None:
        # However the app ends (q, an error, the test harness), the sampling thread must end too.
        self.session.monitor.stop()

    def show(self, sample: Sample, events: Any = None) -> None:
        """Redraw every row from the monitor's history (runs on the UI thread)."""
        history = self.session.monitor.history
        for series in self.session.monitor.series:
            values = [v for _, v in history[series]]
            current, average, peak = stats(values)
            info = SERIES[series]
            level = self.session.metric_level(series)
            style = _LEVEL_STYLE[level]
            name = f"{SHORT[series]:<10}"
            if series == "cpu_percent":
                bar = gauge(min(current, 100.0), 16)
                head = f"{name} [{style}]{bar}[/] "
            else:
                head = f"{name} "
            top = 100.0 if info.unit == "%" and series != "cpu_percent" else None
            text = (
                f"{head}[{style}]{format_value(series, current):>11}[/]"
                f"  avg {format_value(series, average):>11}  peak {format_value(series, peak):>11}  "
                f"[{style}]{sparkline(values, top=top)}[/]"
            )
            self.query_one(f"#row-{series}", Static).update(text)
        self.query_one("#status", Static).update(self._status_text())
        self.query_one("#alerts", Static).update(self._alerts_text())

    def _status_text(self) -> str:
        monitor = self.session.monitor
        state = "PAUSED" if monitor.paused else "running"
        return (
            f" aether monitor  {monitor.collector.scope}  every {format_duration(monitor.interval)}  "
            f"{state}  samples {monitor.samples}  (p pause, +/- interval, q quit)"
        )

    def _alerts_text(self) -> str:
        alerts = self.session.alerts
        if alerts is None:
            return "alerts: none configured (--alerts rules.toml)"
        lines = ["alerts:"]
        for rule in alerts.rules:
            state = alerts.state(rule.name)
            lines.append(f"  {escape(rule.name):<20} [{_STATE_STYLE[state]}]{state}[/]  ({rule.metric})")
        for text in self.session.forecasts():
            lines.append(f"  [cyan]forecast: {escape(text)}[/]")
        for note in self.session.notes[-3:]:
            lines.append(f"  [yellow]warning: {escape(note)}[/]")
        recent = list(alerts.history)[-self.history_rows :]
        if recent:
            lines.append("history:")
            for event in recent:
                when = time.strftime("%H:%M:%S", time.localtime(event.time))
                style = _STATE_STYLE.get(event.state, "white")
                lines.append(f"  {when} [{style}]{escape(event.message)}[/]")
        return "\n".join(lines)

    def action_pause(self) -> None:
        monitor = self.session.monitor
        monitor.pause(not monitor.paused)
        self.query_one("#status", Static).update(self._status_text())

    def action_faster(self) -> None:
        self._set_interval(self.session.monitor.interval / 2)

    def action_slower(self) -> None:
        self._set_interval(self.session.monitor.interval * 2)

    def _set_interval(self, seconds: float) -> None:
        self.session.monitor.interval = min(MAX_INTERVAL, max(MIN_INTERVAL, seconds))
        self.query_one("#status", Static).update(self._status_text())

    async def action_quit(self) -> None:
        self.ended = "quit"
        self.session.monitor.stop()
        self.exit(0)
