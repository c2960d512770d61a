"""The HTML report: one self-contained page with an interactive flamegraph.

:func:`write_html` writes it; the page needs no network and opens from disk. It shows a
flamegraph (click to zoom, search, icicle/flame orientation, left-heavy ordering), a per-thread
selector, a timeline of the samples where a dragged time range re-renders the flamegraph, spans
under the timeline when given, and a sortable top-functions table. Given a ``base`` profile the
flamegraph is differential (red grew, blue shrank). The page ships aggregated data, never
per-sample rows, so a million-sample profile stays a small file (see
:mod:`aether_perf.report.html.payload`).
"""

from aether_perf.report.html.page import render_html, write_html
from aether_perf.report.html.payload import build_payload

__all__ = ["build_payload", "render_html", "write_html"]
