"""The HTML report of a heap snapshot: memory over time beside the allocation flamegraph.

One self-contained page, drawn entirely in Python as inline SVG (no script at all, and the same
Content-Security-Policy as the profile report forbids every fetch):

- *Memory over time* (``svg#memory-chart``): the tracked heap and RSS from the snapshot's
  :class:`~aether_perf.model.memory_series.MemorySeries` as two polylines (``.series-heap``,
  ``.series-rss``) on one byte axis from 0 to ``data-y-max`` bytes (the plot is ``data-plot-height``
  px tall, so a polyline's rendered height times ``y-max / plot-height`` is bytes again), the peaks
  marked; without a series, a note says so.
- *Live bytes by stack* (``svg#heap-flame``): an icicle of the live blocks (root at the top, a
  frame's width its share of the live bytes; callers above callees; functions merged per call
  path as in the profile report), each frame with a ``<title>`` tooltip.
- The top stacks as a table, and the leak check (``section#leaks``): the program's leaking stacks
  and, per origin, what was left out (see :mod:`aether_perf.analysis.leak_origin`).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

import numpy as np

from aether_perf.fileio import PathOrText, open_text_output
from aether_perf.model.frame import Frame, FunctionKey
from aether_perf.model.heap import NO_FRAMES, HeapSnapshot
from aether_perf.report.svg import frame_colour
from aether_perf.units import format_duration, format_size

__all__ = ["render_heap_html", "write_heap_html"]

_CHART_W, _CHART_H = 960, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 78, 16, 14, 34
_FLAME_W, _ROW = 960, 18
_MIN_FRAME_PX = 0.5
_CHAR_PX = 6.7

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fff}
header{padding:12px 18px;border-bottom:1px solid #ddd}h1{font-size:18px;margin:0 0 4px}
.facts{color:#555;font-size:13px}main{padding:8px 18px}h2{font-size:15px;margin:16px 0 6px}
.note{color:#777;font-size:13px}svg text{font:11px monospace;fill:#222}
.axis line,.grid{stroke:#ccc;stroke-width:1}.series-heap{fill:none;stroke:#c0392b;stroke-width:1.5}
.series-rss{fill:none;stroke:#2471a3;stroke-width:1.5}.legend span{margin-right:14px}
.sw{display:inline-block;width:12px;height:3px;vertical-align:middle;margin-right:4px}
g.frame rect{stroke:#fff;stroke-width:.5}table{border-collapse:collapse;font-size:13px}
td,th{padding:2px 8px;text-align:left;border-bottom:1px solid #eee}td.n{text-align:right}
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="generator" content="aether">
<title>{title}</title>
<style>{css}</style>
</head>
<body data-ready="1">
<header><h1 id="title">{title}</h1><div id="facts" class="facts">{facts}</div></header>
<main>
<section aria-label="Memory over time"><h2>Memory over time</h2>{chart}</section>
<section aria-label="Allocation flamegraph"><h2>Live bytes by stack</h2>{flame}</section>
<section aria-label="Top stacks"><h2>Top stacks by live bytes</h2>{table}</section>
<section id="leaks" aria-label="Leak check"><h2>Leak check</h2>{leaks}</section>
</main>
</body>
</html>
"""


def _e(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return html.escape(text, quote=True)


def _nice_max(value: int) -> int:
    """``value`` rounded up to a multiple of an eighth of its power of two (at least 1 KiB): an
    axis top whose quarters are short numbers."""
    value = max(int(value), 1024)
    step = 1 << (value.bit_length() - 3)
    return -(-value // step) * step


def _chart(snapshot: HeapSnapshot) -> str:
    series = snapshot.series
    if series is None or len(series) == 0:
        return '<p class="note" id="no-series">No memory series was recorded with this snapshot.</p>'
    plot_w = _CHART_W - _LEFT - _RIGHT
    plot_h = _CHART_H - _TOP - _BOTTOM
    span = max(int(series.time_ns[-1]), 1)
    y_max = _nice_max(int(max(series.heap_bytes.max(), series.rss_bytes.max() if series.has_rss else 0)))
    xs = _LEFT + series.time_ns.astype(np.float64) * (plot_w / span)

    def points(column: np.ndarray) -> str:
        ys = _TOP + plot_h - column.astype(np.float64) * (plot_h / y_max)
        return " ".join(f"{x:.2f},{y:.2f}" for x, y in zip(xs.tolist(), ys.tolist(), strict=True))

    parts = [
        f'<svg id="memory-chart" xmlns="http://www.w3.org/2000/svg" width="{_CHART_W}" height="{_CHART_H}" '
        f'viewBox="0 0 {_CHART_W} {_CHART_H}" data-y-max="{y_max}" data-plot-height="{plot_h}" '
        f'data-span-ns="{span}" role="img" aria-label="Memory over time">'
    ]
    for i in range(5):
        y = _TOP + plot_h * i / 4
        parts.append(f'<line class="grid" x1="{_LEFT}" x2="{_LEFT + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>')
        label = format_size(round(y_max * (4 - i) / 4))
        parts.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    for i in range(5):
        x = _LEFT + plot_w * i / 4
        label = format_duration(span * i / 4 / 1e9) if i else "0"
        parts.append(f'<text x="{x:.1f}" y="{_TOP + plot_h + 18}" text-anchor="middle">{label}</text>')
    if series.has_rss:
        parts.append(f'<polyline class="series-rss" points="{points(series.rss_bytes)}"/>')
    parts.append(f'<polyline class="series-heap" points="{points(series.heap_bytes)}"/>')
    for name, peak, colour in (
        ("heap", series.heap_peak(), "#c0392b"),
        ("rss", series.rss_peak(), "#2471a3"),
    ):
        if peak is None:
            continue
        x = _LEFT + peak.time_ns * plot_w / span
        y = _TOP + plot_h - peak.bytes * plot_h / y_max
        what = "tracked heap" if name == "heap" else "RSS"
        when = format_duration(peak.time_ns / 1e9)
        parts.append(
            f'<circle class="peak-{name}" cx="{x:.2f}" cy="{y:.2f}" r="3.5" fill="{colour}">'
            f"<title>peak {what}: {peak.bytes:,} bytes at {when}</title></circle>"
        )
    parts.append("</svg>")
    legend = (
        '<div class="legend"><span><i class="sw" style="background:#c0392b"></i>tracked heap '
        "(allocated minus freed since start)</span>"
    )
    if series.has_rss:
        legend += '<span><i class="sw" style="background:#2471a3"></i>RSS (resident set)</span>'
    every = format_duration(series.interval_ns / 1e9)
    legend += f'<span class="note">{len(series):,} points, every {every}</span></div>'
    return "".join(parts) + legend


@dataclass
class _Node:
    key: FunctionKey | None
    bytes: int = 0
    children: dict[FunctionKey, _Node] = field(default_factory=dict)


def _trie(snapshot: HeapSnapshot) -> _Node:
    root = _Node(None)
    sums = np.zeros(len(snapshot.stacks), dtype=np.int64)
    np.add.at(sums, snapshot.stack, snapshot.bytes)
    keys = [frame.function_key for frame in snapshot.frames]
    for stack_id, nbytes in enumerate(sums.tolist()):
        if nbytes <= 0:
            continue
        root.bytes += nbytes
        node = root
        for index in snapshot.stacks[stack_id]:
            key = keys[index]
            child = node.children.get(key)
            if child is None:
                child = node.children[key] = _Node(key)
            child.bytes += nbytes
            node = child
    return root


def _flame(snapshot: HeapSnapshot) -> str:
    root = _trie(snapshot)
    if root.bytes == 0:
        return '<p class="note" id="no-live">No live blocks.</p>'
    scale = (_FLAME_W - 2) / root.bytes
    boxes: list[str] = []
    depth_max = 0
    pending: list[tuple[_Node, float, int]] = [(root, 1.0, 0)]
    while pending:
        node, x, depth = pending.pop()
        width = node.bytes * scale
        depth_max = max(depth_max, depth)
        if node.key is None:
            name, where = "all live bytes", ""
        else:
            name, file, first_line = node.key
            where = f" ({file}:{first_line})" if file else ""
        share = 100.0 * node.bytes / root.bytes
        tip = f"{name}{where}\n{node.bytes:,} bytes live ({format_size(node.bytes)}), {share:.1f}%"
        chars = int((width - 6) / _CHAR_PX)
        label = "" if chars < 3 else (name if len(name) <= chars else name[: chars - 2] + "..")
        y = depth * _ROW
        fill = "rgb(200,200,200)" if node.key is None else frame_colour(name)
        boxes.append(
            f'<g class="frame" data-name="{_e(name)}" data-bytes="{node.bytes}"><title>{_e(tip)}</title>'
            f'<rect x="{x:.2f}" y="{y}" width="{width:.2f}" height="{_ROW - 1}" fill="{fill}"/>'
            f'<text x="{x + 3:.2f}" y="{y + 13}">{_e(label)}</text></g>'
        )
        child_x = x
        for child in sorted(node.children.values(), key=lambda c: -c.bytes):
            if child.bytes * scale >= _MIN_FRAME_PX:
                pending.append((child, child_x, depth + 1))
            child_x += child.bytes * scale
    height = (depth_max + 1) * _ROW
    return (
        f'<svg id="heap-flame" xmlns="http://www.w3.org/2000/svg" width="{_FLAME_W}" height="{height}" '
        f'viewBox="0 0 {_FLAME_W} {height}" data-total-bytes="{root.bytes}">' + "".join(boxes) + "</svg>"
    )


def _stack_text(frames: tuple[Frame, ...]) -> str:
    """A stack innermost frame first, escaped for HTML."""
    if not frames:
        return _e(NO_FRAMES)
    return " &lt;- ".join(_e(f"{f.function} ({f.file}:{f.line})") for f in reversed(frames))


def _n(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def _table(snapshot: HeapSnapshot, top: int) -> str:
    rows = []
    for spot in snapshot.hot_spots(top):
        rows.append(
            f'<tr><td class="n">{spot.bytes:,}</td><td class="n">{spot.pct:.1f}%</td>'
            f'<td class="n">{spot.count:,}</td><td>{_stack_text(spot.frames)}</td></tr>'
        )
    head = "<tr><th>bytes</th><th>%</th><th>blocks</th><th>allocated at (innermost first)</th></tr>"
    return f'<table id="top"><thead>{head}</thead><tbody>{"".join(rows)}</tbody></table>'


def _leaks(snapshot: HeapSnapshot, top: int) -> str:
    from aether_perf.analysis.heap import leak_report
    from aether_perf.analysis.leak_origin import ORIGIN_LABELS

    report = leak_report(snapshot)
    estimated = " (estimated)" if report.mode == "sampled" else ""
    parts = [
        f'<p id="leak-summary">{report.total_bytes:,} bytes in {_n(report.total_blocks, "block")} '
        f"from {_n(report.stacks, 'stack')} of the program still live{estimated}.</p>"
    ]
    if report.groups:
        rows = "".join(
            f'<tr><td class="n">{g.bytes:,}</td><td class="n">{g.blocks:,}</td>'
            f"<td>{_stack_text(g.frames)}</td></tr>"
            for g in report.groups[:top]
        )
        head = "<tr><th>bytes</th><th>blocks</th><th>allocated at (innermost first)</th></tr>"
        parts.append(f'<table id="leak-stacks"><thead>{head}</thead><tbody>{rows}</tbody></table>')
    for origin, total in report.excluded.items():
        parts.append(
            f'<p class="note" data-origin="{_e(origin)}">Not counted: {total.bytes:,} bytes in '
            f"{_n(total.blocks, 'block')} {_e(ORIGIN_LABELS.get(origin, origin))}.</p>"
        )
    return "".join(parts)


def render_heap_html(snapshot: HeapSnapshot, *, title: str | None = None, top: int = 20) -> str:
    """The report page of ``snapshot`` as a string (see :func:`write_heap_html`)."""
    meta = snapshot.meta
    if title is None:
        command = meta.extra.get("command")
        title = f"aether heap snapshot ({meta.mode})" + (f" of {command}" if isinstance(command, str) else "")
    facts = (
        f"live {snapshot.total_bytes:,} bytes in {round(snapshot.total_count):,} blocks"
        + (" (estimated)" if meta.mode == "sampled" else "")
        + f" &middot; peak {meta.peak_bytes:,} bytes &middot; allocated {meta.allocated_bytes:,} bytes in "
        f"{meta.allocations:,} blocks &middot; duration {format_duration(meta.duration)}"
        + (f" &middot; Python {_e(meta.python_version)}" if meta.python_version else "")
    )
    return _PAGE.format(
        title=_e(title),
        css=_CSS,
        facts=facts,
        chart=_chart(snapshot),
        flame=_flame(snapshot),
        table=_table(snapshot, top),
        leaks=_leaks(snapshot, top),
    )


def write_heap_html(
    snapshot: HeapSnapshot, file: PathOrText, *, title: str | None = None, top: int = 20
) -> None:
    """Write the heap report (module doc) as one self-contained HTML file, to a path (atomically)
    or an open text file."""
    page = render_heap_html(snapshot, title=title, top=top)
    with open_text_output(file) as handle:
        handle.write(page)
