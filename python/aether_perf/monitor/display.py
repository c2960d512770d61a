"""Text pieces shared by the dashboard and the plain-line output: values, sparklines, gauges."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from aether_perf.monitor.metrics import SERIES, Sample
from aether_perf.units import format_size

__all__ = ["format_value", "gauge", "plain_line", "sparkline", "stats"]

_BARS = "▁▂▃▄▅▆▇█"
#: Short names for plain lines and dashboard rows.
SHORT = {
    "cpu_percent": "cpu",
    "memory_percent": "mem",
    "memory_bytes": "mem used",
    "disk_read_rate": "disk read",
    "disk_write_rate": "disk write",
    "net_recv_rate": "net in",
    "net_sent_rate": "net out",
    "threads": "threads",
}


def format_value(series: str, value: float) -> str:
    unit = SERIES[series].unit
    if unit == "%":
        return f"{value:.1f}%"
    if unit == "B":
        return format_size(int(value))
    if unit == "B/s":
        return format_size(int(value)) + "/s"
    return f"{value:.0f}"


def sparkline(values: Sequence[float], width: int | None = None, top: float | None = None) -> str:
    """Block characters, one per value (the last ``width``), scaled from 0 to ``top`` (or the max)."""
    shown = list(values)[-width:] if width else list(values)
    if not shown:
        return ""
    high = top if top is not None else max(shown)
    if high <= 0:
        return _BARS[0] * len(shown)
    return "".join(_BARS[min(len(_BARS) - 1, max(0, int(v / high * (len(_BARS) - 1) + 0.5)))] for v in shown)


def gauge(percent: float, width: int = 20) -> str:
    filled = max(0, min(width, round(percent / 100 * width)))
    return "█" * filled + "░" * (width - filled)


def stats(values: Iterable[float]) -> tuple[float, float, float]:
    """(current, average, peak) of a history."""
    data = list(values)
    if not data:
        return 0.0, 0.0, 0.0
    return data[-1], sum(data) / len(data), max(data)


def plain_line(sample: Sample) -> str:
    """ "12:00:01 cpu 12.3% mem 45.1% 3.4GiB disk read 0B/s ..." for logs and pipes."""
    parts = [time.strftime("%H:%M:%S", time.localtime(sample.time))]
    for series in SERIES:
        if series in sample.values:
            name = SHORT[series]
            value = format_value(series, sample.values[series])
            parts.append(value if series == "memory_bytes" else f"{name} {value}")
    return " ".join(parts)
