"""A self-contained HTML report of a load test: tables and inline SVG charts, no script, no network.

Charts (per second of the test, from the timeline windows): latency over time (p50, p95, p99 from
the intended start, and the raw p99 in the open model) and throughput (completed transactions,
errors, virtual users). Everything is in the one file: inline CSS and SVG.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import TextIO

from aether_perf.fileio import PathOrText, open_text_output
from aether_perf.load.histogram import PERCENTILES
from aether_perf.load.result import LoadTestResult, TransactionStats
from aether_perf.load.thresholds import ThresholdOutcome

__all__ = ["render_html", "write_html"]

_CSS = """
body{font:14px system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}
td,th{padding:3px 10px;text-align:right;border-bottom:1px solid #ddd}
td:first-child,th:first-child{text-align:left}.fail{color:#b00;font-weight:bold}.ok{color:#070}
svg{background:#fafafa;border:1px solid #ddd}.legend span{margin-right:14px}
"""
_COLORS = ("#1f77b4", "#ff7f0e", "#d62728", "#7f7f7f", "#2ca02c", "#9467bd")


def _fmt_ms(ns: float) -> str:
    return "-" if math.isnan(ns) else f"{ns / 1e6:,.1f}"


def _chart(
    title: str, unit: str, xs: Sequence[float], series: list[tuple[str, list[float]]], seconds: float
) -> str:
    """An SVG line chart; nan values break a line."""
    width, height, left, bottom, top = 1000, 260, 60, 30, 10
    values = [v for _, ys in series for v in ys if not math.isnan(v)]
    step = _nice_step(max(values) if values else 1.0)
    ymax = step * max(1, math.ceil((max(values) if values else 1.0) / step))
    xmax = max([seconds, *xs]) if xs else seconds
    xmax = xmax if xmax > 0 else 1.0
    xstep = max(1.0, _nice_step(xmax * 4 / 8))  # whole seconds, about 8 labels

    def x(v: float) -> float:
        return left + (width - left - 10) * v / xmax

    def y(v: float) -> float:
        return top + (height - top - bottom) * (1 - v / ymax)

    parts = [
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">',
        f"<title>{html.escape(title)}</title>",
    ]
    for k in range(round(ymax / step) + 1):
        v = step * k
        parts.append(
            f'<line x1="{left}" x2="{width - 10}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e4e4e4"/>'
        )
        parts.append(
            f'<text x="{left - 6}" y="{y(v) + 4:.1f}" font-size="11" text-anchor="end">{v:,.4g}</text>'
        )
    for k in range(int(xmax // xstep) + 1):
        v = xstep * k
        parts.append(
            f'<text x="{x(v):.1f}" y="{height - 10}" font-size="11" text-anchor="middle">{v:.0f}s</text>'
        )
    for (name, ys), color in zip(series, _COLORS, strict=False):
        segment: list[str] = []
        paths = []
        for xv, yv in zip(xs, ys, strict=True):
            if math.isnan(yv):
                if segment:
                    paths.append(segment)
                segment = []
            else:
                segment.append(f"{x(xv):.1f},{y(yv):.1f}")
        if segment:
            paths.append(segment)
        for seg in paths:
            if len(seg) == 1:
                cx, cy = seg[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{color}"/>')
            else:
                parts.append(
                    f'<polyline fill="none" stroke="{color}" stroke-width="1.8" points="{" ".join(seg)}"/>'
                )
        del name
    parts.append("</svg>")
    legend = "".join(
        f'<span style="color:{color}">&#9632; {html.escape(name)}</span>'
        for (name, _), color in zip(series, _COLORS, strict=False)
    )
    heading = f"<h2>{html.escape(title)} ({html.escape(unit)})</h2>"
    return heading + "".join(parts) + f'<div class="legend">{legend}</div>'


def _nice_step(top: float) -> float:
    """A round grid step (1, 2 or 5 x 10^k) giving 3 to 6 lines up to ``top``."""
    if top <= 0 or math.isnan(top):
        return 1.0
    raw = top / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if factor * magnitude >= raw:
            return float(factor * magnitude)
    return float(10 * magnitude)


def _row(cells: Sequence[str]) -> str:
    return "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>"


def _stats_cells(stats: TransactionStats, open_model: bool) -> list[str]:
    h = stats.corrected
    pct = h.percentiles(PERCENTILES) if h.count else [math.nan] * len(PERCENTILES)
    cells = [
        f"{stats.count:,}",
        f"{stats.error_count:,}",
        *(_fmt_ms(v) for v in pct),
        _fmt_ms(float(h.max)) if h.count else "-",
    ]
    if open_model:
        cells.append(_fmt_ms(stats.raw.percentile(99)) if stats.raw.count else "-")
    return cells


def render_html(result: LoadTestResult, outcomes: list[ThresholdOutcome] | None = None) -> str:
    """The report as one HTML document."""
    open_model = result.model == "open"
    head = ["requests", "errors", *(f"p{q:g} ms" for q in PERCENTILES), "max ms"] + (
        ["raw p99 ms"] if open_model else []
    )
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    out = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        f"<title>aether load: {html.escape(result.scenario)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Load test: {html.escape(result.scenario)}"
        + (' <span class="fail">(interrupted)</span>' if result.interrupted else "")
        + "</h1>",
        f"<p>{html.escape(result.model)} model against {html.escape(result.host)}, engine "
        f"{html.escape(result.engine)}, {result.workers} worker(s), {result.duration:g} s, "
        f"{result.throughput:,.1f} transactions/s, late starts {result.late:,}, "
        f"dropped starts {result.dropped:,}."
        + (
            " Latency is measured from each transaction's intended start (coordinated omission corrected);"
            " raw latency from its actual start."
            if open_model
            else ""
        )
        + "</p>",
    ]
    if outcomes:
        out.append("<h2>Thresholds</h2><table>")
        for o in outcomes:
            cls = "ok" if o.passed else "fail"
            out.append(f'<tr><td class="{cls}">{html.escape(o.describe())}</td></tr>')
        out.append("</table>")
    out.append(
        f"<h2>Stages</h2><table><tr><th>stage</th><th>load</th><th>peak users</th><th>req/s</th>{th}</tr>"
    )
    for stage in result.stages:
        s = stage.stage
        load = f"{s.users} users" if s.users is not None else f"{s.rate:.4g}/s"
        out.append(
            _row(
                [
                    stage.name,
                    load,
                    str(stage.peak_users),
                    f"{stage.throughput:,.1f}",
                    *_stats_cells(stage.total, open_model),
                ]
            )
        )
    out.append(f"</table><h2>Transactions</h2><table><tr><th>transaction</th>{th}</tr>")
    for name, stats in sorted(result.transactions.items()):
        out.append(_row([name, *_stats_cells(stats, open_model)]))
    out.append("</table>")
    errors: dict[str, int] = {}
    for stats in result.transactions.values():
        for kind, n in stats.errors.items():
            errors[kind] = errors.get(kind, 0) + n
    if errors:
        out.append("<h2>Errors by kind</h2><table>")
        for kind, n in sorted(errors.items(), key=lambda item: -item[1]):
            out.append(_row([kind, f"{n:,}"]))
        out.append("</table>")
    xs = [w.second + 0.5 for w in result.timeline]
    series: list[tuple[str, list[float]]] = []
    for q in (50.0, 95.0, 99.0):
        series.append(
            (
                f"p{q:g}",
                [w.corrected.percentile(q) / 1e6 if w.corrected.count else math.nan for w in result.timeline],
            )
        )
    if open_model:
        series.append(
            ("raw p99", [w.raw.percentile(99) / 1e6 if w.raw.count else math.nan for w in result.timeline])
        )
    out.append(_chart("Latency over time", "ms", xs, series, result.duration))
    out.append(
        _chart(
            "Throughput",
            "per second",
            xs,
            [
                ("transactions/s", [float(w.count) for w in result.timeline]),
                ("errors/s", [float(w.errors) for w in result.timeline]),
                ("virtual users", [float(w.users) for w in result.timeline]),
            ],
            result.duration,
        )
    )
    out.append("</body></html>\n")
    return "\n".join(out)


def write_html(
    result: LoadTestResult, file: PathOrText, outcomes: list[ThresholdOutcome] | None = None
) -> None:
    """Write the report to a path (atomically) or a text stream."""
    text = render_html(result, outcomes)
    with open_text_output(file) as out:
        stream: TextIO = out
        stream.write(text)
