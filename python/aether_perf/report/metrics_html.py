"""A self-contained HTML page of a monitor recording (``aether monitor --record``).

One SVG line chart per series (drawn here, in Python: no script, no network), with its min, mean,
max and last value, warning/critical alert markers on the time axis, and the alert history as a
table. Each chart's polyline carries ``data-series`` and its points are exactly the recorded
values scaled into the plot box, so tests (and curious users) can read the data back.
"""

from __future__ import annotations

import html
import time
from typing import TYPE_CHECKING

from aether_perf.fileio import PathOrText, open_text_output

if TYPE_CHECKING:
    from aether_perf.monitor.record import MetricsRecording

__all__ = ["CHART_HEIGHT", "CHART_WIDTH", "render_metrics_html", "write_metrics_html"]

CHART_WIDTH = 720
CHART_HEIGHT = 140
_PAD = 4
_COLORS = {"warning": "#e0a800", "critical": "#d62728", "resolved": "#2ca02c", "predicted": "#1f77b4"}

_STYLE = """
body { font: 14px system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 20px; } h2 { font-size: 15px; margin: 18px 0 4px; }
.meta, .stats { color: #555; font-size: 12px; }
svg { background: #fafafa; border: 1px solid #ddd; }
polyline { fill: none; stroke: #3366cc; stroke-width: 1.5; }
table { border-collapse: collapse; margin-top: 8px; font-size: 13px; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; }
"""


def _fmt(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value:.1f}%"
    if unit in ("B", "B/s"):
        from aether_perf.units import format_size

        return format_size(int(value)) + ("/s" if unit == "B/s" else "")
    return f"{value:g}"


def _chart(
    name: str, unit: str, times: list[float], values: list[float | None], alerts: list[dict[str, object]]
) -> str:
    points = [(t, v) for t, v in zip(times, values, strict=True) if v is not None]
    if not points:
        return f'<h2>{html.escape(name)}</h2><p class="stats">no values recorded</p>'
    t0, t1 = times[0], times[-1]
    span = (t1 - t0) or 1.0
    data = [v for _, v in points]
    low = min(0.0, min(data))
    high = max(data)
    if unit == "%":
        high = max(high, 100.0) if name != "cpu_percent" else max(high, 1.0)
    high = high if high > low else low + 1.0
    width, height = CHART_WIDTH - 2 * _PAD, CHART_HEIGHT - 2 * _PAD

    def x(t: float) -> float:
        return _PAD + (t - t0) / span * width

    def y(v: float) -> float:
        return _PAD + (1 - (v - low) / (high - low)) * height

    coords = " ".join(f"{x(t):.2f},{y(v):.2f}" for t, v in points)
    marks = []
    for alert in alerts:
        if alert.get("metric") != name:
            continue
        when = float(alert.get("time", t0))  # type: ignore[arg-type]
        color = _COLORS.get(str(alert.get("state")), "#888")
        title = html.escape(str(alert.get("message", "")))
        marks.append(
            f'<line x1="{x(when):.2f}" x2="{x(when):.2f}" y1="{_PAD}" y2="{_PAD + height}" '
            f'stroke="{color}" stroke-dasharray="3,2"><title>{title}</title></line>'
        )
    stats = (
        f"min {_fmt(min(data), unit)} · mean {_fmt(sum(data) / len(data), unit)} · "
        f"max {_fmt(max(data), unit)} · last {_fmt(data[-1], unit)} · {len(data)} points"
    )
    return (
        f'<h2>{html.escape(name)}</h2><div class="stats">{html.escape(stats)}</div>'
        f'<svg width="{CHART_WIDTH}" height="{CHART_HEIGHT}" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" '
        f'data-min="{low!r}" data-max="{high!r}" data-t0="{t0:.6f}" data-t1="{t1:.6f}">'
        f'<polyline data-series="{html.escape(name)}" points="{coords}"/>{"".join(marks)}</svg>'
    )


def render_metrics_html(recording: MetricsRecording, title: str | None = None) -> str:
    title = title or f"aether monitor: {recording.scope}"
    if recording.times:
        start = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(recording.times[0]))
        length = recording.times[-1] - recording.times[0]
        meta = f"{recording.scope} · from {start} for {length:.1f}s · {len(recording.times)} samples"
    else:
        meta = f"{recording.scope} · no samples"
    charts = [
        _chart(name, recording.units.get(name, ""), recording.times, values, recording.alerts)
        for name, values in recording.series.items()
    ]
    rows = []
    for alert in recording.alerts:
        when = time.strftime("%H:%M:%S", time.localtime(float(alert.get("time", 0))))  # type: ignore[arg-type,unused-ignore]
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(cell))}</td>"
                for cell in (when, alert.get("rule"), alert.get("state"), alert.get("message"))
            )
            + "</tr>"
        )
    table = (
        "<h2>alerts</h2><table><tr><th>time</th><th>rule</th><th>state</th><th>message</th></tr>"
        + "".join(rows)
        + "</table>"
        if rows
        else '<h2>alerts</h2><p class="stats">none</p>'
    )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f'<h1>{html.escape(title)}</h1><div class="meta">{html.escape(meta)}</div>'
        + "".join(charts)
        + table
        + "</body></html>\n"
    )


def write_metrics_html(recording: MetricsRecording, file: PathOrText, title: str | None = None) -> None:
    """Write the page to a path (atomically) or an open text file."""
    page = render_metrics_html(recording, title)
    with open_text_output(file) as handle:
        handle.write(page)
