"""A self-contained HTML report: tables, a distribution plot per benchmark, history across runs.

Plain HTML with inline SVG and CSS: no script, no network, so it opens from a CI artifact as is.
Per benchmark, the distribution plot shows every value (one row per side when comparing), the
IQR box and median, the per-process medians as larger marks and Tukey outliers ringed in red; the
history plot shows the median and its 95% interval of each saved run that has the benchmark
(oldest first), followed by this run.
"""

from __future__ import annotations

import html
import math
import random
from collections.abc import Sequence

from aether_perf.bench.comparison import Comparison, ComparisonReport
from aether_perf.bench.formatting import fmt_interval, fmt_p, fmt_pct, fmt_ratio, fmt_time
from aether_perf.bench.results import BenchmarkResult, Suite
from aether_perf.bench.stats import quantile, tukey_outliers

__all__ = ["render_html"]

_WIDTH = 720
_LEFT = 70
_RIGHT = 40
_COLORS = ("#1f77b4", "#7f7f7f")  # this run, the baseline
_VERDICT_CLASS = {"regression": "bad", "improvement": "good", "insufficient data": "warn"}

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:8px 0 16px}
th,td{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right}
th:first-child,td:first-child{text-align:left}
.bad{color:#b00020;font-weight:bold}.good{color:#137333}.warn{color:#a56300}
.bench{margin:18px 0;padding-top:6px;border-top:1px solid #eee}
.warning{background:#fff4e5;border-left:4px solid #a56300;padding:6px 10px}
svg text{font:11px system-ui,sans-serif;fill:#444}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _scale(low: float, high: float) -> tuple[float, float]:
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        return low * 0.9 if low else -1.0, (high or 1.0) * 1.1
    pad = (high - low) * 0.08
    return low - pad, high + pad


def _x(value: float, low: float, high: float) -> float:
    return _LEFT + (value - low) / (high - low) * (_WIDTH - _LEFT - _RIGHT)


def _axis(low: float, high: float, y: float) -> list[str]:
    parts = [f'<line x1="{_LEFT}" y1="{y}" x2="{_WIDTH - _RIGHT}" y2="{y}" stroke="#999"/>']
    for k in range(5):
        value = low + (high - low) * k / 4
        x = _x(value, low, high)
        parts.append(f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + 4}" stroke="#999"/>')
        parts.append(f'<text x="{x:.1f}" y="{y + 16}" text-anchor="middle">{_e(fmt_time(value))}</text>')
    return parts


def distribution_svg(rows: Sequence[tuple[str, BenchmarkResult]], seed: int = 0) -> str:
    """One strip per (label, result): values jittered, IQR box, median, process medians, outliers."""
    values = [v for _, result in rows for v in result.values()]
    low, high = _scale(min(values), max(values))
    row_height = 44
    height = row_height * len(rows) + 28
    rng = random.Random(seed)
    parts = [
        f'<svg class="dist" xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{height}" role="img">'
    ]
    for index, (label, result) in enumerate(rows):
        color = _COLORS[index % len(_COLORS)]
        top = index * row_height + 4
        mid = top + row_height / 2 - 4
        flat = result.values()
        q1, q3, med = quantile(flat, 0.25), quantile(flat, 0.75), result.summary.median
        parts.append(f'<text x="4" y="{mid + 4:.1f}">{_e(label)}</text>')
        parts.append(
            f'<rect class="iqr" x="{_x(q1, low, high):.1f}" y="{top + 6}" '
            f'width="{max(_x(q3, low, high) - _x(q1, low, high), 1):.1f}" height="{row_height - 20}" '
            f'fill="{color}" fill-opacity="0.12" stroke="{color}"/>'
        )
        parts.append(
            f'<line class="median" x1="{_x(med, low, high):.1f}" y1="{top + 4}" '
            f'x2="{_x(med, low, high):.1f}" '
            f'y2="{top + row_height - 12}" stroke="{color}" stroke-width="2"/>'
        )
        for value, outlier in zip(flat, tukey_outliers(flat), strict=True):
            y = mid + rng.uniform(-9, 9)
            ring = ' stroke="#d62728" stroke-width="1.5"' if outlier else ""
            css = "value outlier" if outlier else "value"
            parts.append(
                f'<circle class="{css}" cx="{_x(value, low, high):.1f}" cy="{y:.1f}" r="2.2" '
                f'fill="{color}" fill-opacity="0.55"{ring}><title>{_e(fmt_time(value))}</title></circle>'
            )
        for process_median in result.process_medians():
            parts.append(
                f'<path class="pmedian" d="M{_x(process_median, low, high):.1f},'
                f'{top + row_height - 12} l-4,7 h8 z" '
                f'fill="{color}"><title>process median {_e(fmt_time(process_median))}</title></path>'
            )
    parts += _axis(low, high, row_height * len(rows) + 4)
    parts.append("</svg>")
    return "".join(parts)


def history_svg(points: Sequence[tuple[str, float, float, float]]) -> str:
    """Median with its interval per run (name, median, ci_low, ci_high), oldest first."""
    height = 150
    top, bottom = 10, 110
    lows = [p[2] for p in points]
    highs = [p[3] for p in points]
    low, high = _scale(min(lows), max(highs))
    step = (_WIDTH - _LEFT - _RIGHT) / max(len(points), 1)

    def y(value: float) -> float:
        return bottom - (value - low) / (high - low) * (bottom - top)

    parts = [
        f'<svg class="history" xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" '
        f'height="{height}" role="img">'
    ]
    for k in range(3):
        value = low + (high - low) * k / 2
        parts.append(
            f'<text x="{_LEFT - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{_e(fmt_time(value))}</text>'
        )
    parts.append(f'<line x1="{_LEFT}" y1="{bottom}" x2="{_WIDTH - _RIGHT}" y2="{bottom}" stroke="#999"/>')
    path = []
    for index, (name, med, ci_low, ci_high) in enumerate(points):
        x = _LEFT + step * (index + 0.5)
        path.append(f"{'M' if index == 0 else 'L'}{x:.1f},{y(med):.1f}")
        parts.append(
            f'<line x1="{x:.1f}" y1="{y(ci_low):.1f}" x2="{x:.1f}" y2="{y(ci_high):.1f}" stroke="#888"/>'
        )
        parts.append(
            f'<circle class="run" cx="{x:.1f}" cy="{y(med):.1f}" r="3.5" fill="{_COLORS[0]}">'
            f"<title>{_e(name)}: {_e(fmt_time(med))}</title></circle>"
        )
        parts.append(f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{_e(name[:14])}</text>')
    if len(path) > 1:
        parts.insert(
            1, f'<path d="{" ".join(path)}" fill="none" stroke="{_COLORS[0]}" stroke-opacity="0.5"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _row(*cells: object) -> str:
    return "<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in cells) + "</tr>"


def _comparison_table(report: ComparisonReport) -> str:
    rows = []
    for c in report.comparisons:
        css = _VERDICT_CLASS.get(c.verdict, "")
        rows.append(
            f"<tr><td>{_e(c.id)}</td><td>{_e(fmt_time(c.base_median))}</td><td>{_e(fmt_time(c.head_median))}</td>"
            f"<td>{_e(fmt_ratio(c))}</td><td>{_e(fmt_p(c.p_adjusted))}</td><td>{_e(fmt_pct(c.min_detectable))}</td>"
            f'<td class="{css}">{_e(c.verdict)}</td></tr>'
        )
    warnings = "".join(f'<p class="warning">{_e(w)}</p>' for w in report.warnings)
    return (
        f"<h2>Against {_e(report.base_name)}</h2>{warnings}<p>Regression: slower by more than "
        f"{_e(fmt_pct(report.threshold))} and significant (Mann-Whitney U, Holm-adjusted "
        f"p &lt; {report.alpha:g}, 95% CI of the ratio entirely beyond the threshold). "
        f"{len(report.regressions)} found.</p>"
        '<table class="comparison"><tr><th>benchmark</th><th>base</th><th>head</th><th>ratio [95% CI]</th>'
        "<th>p (Holm)</th><th>min. detectable</th><th>verdict</th></tr>" + "".join(rows) + "</table>"
    )


def render_html(
    suite: Suite,
    report: ComparisonReport | None = None,
    baseline: Suite | None = None,
    history: Sequence[Suite] = (),
) -> str:
    """The page for ``suite``; ``baseline`` adds its values to the plots, ``history`` (saved runs,
    oldest first) the history plot."""
    ident = suite.identity
    commit = f", git {ident.git_commit[:10]}" if ident.git_commit else ""
    out = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>aether bench: {_e(suite.name)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Benchmarks: {_e(suite.name)}</h1>",
        f"<p>{_e(ident.python_implementation)} {_e(ident.python_version)} on "
        f"{_e(ident.machine_id)}{_e(commit)}, {_e(suite.created)}</p>",
    ]
    if report is not None:
        out.append(_comparison_table(report))
    by_comparison: dict[str, Comparison] = {c.id: c for c in report.comparisons} if report else {}
    base_by_id = baseline.by_id() if baseline is not None else {}
    out.append(
        '<h2>Results</h2><table class="results"><tr><th>benchmark</th><th>median</th><th>95% CI</th>'
        "<th>IQR</th><th>min</th><th>mean</th><th>stdev</th><th>outliers</th><th>processes x values</th></tr>"
    )
    for bench in suite.benchmarks:
        if not bench.processes:
            continue
        s = bench.summary
        out.append(
            _row(
                bench.id,
                fmt_time(s.median),
                fmt_interval(s.ci_low, s.ci_high),
                fmt_time(s.iqr),
                fmt_time(s.min),
                fmt_time(s.mean),
                fmt_time(s.stdev),
                s.outliers,
                f"{s.processes} x {s.values // max(s.processes, 1)}",
            )
        )
    out.append("</table>")
    for index, bench in enumerate(suite.benchmarks):
        if not bench.processes:
            continue
        rows: list[tuple[str, BenchmarkResult]] = [(suite.name, bench)]
        other = base_by_id.get(bench.id)
        if other is not None and other.processes:
            rows.append((baseline.name if baseline else "base", other))
        c = by_comparison.get(bench.id)
        verdict = (
            f' <span class="{_VERDICT_CLASS.get(c.verdict, "")}">{_e(c.verdict)} {_e(fmt_ratio(c))}</span>'
            if c
            else ""
        )
        out.append(f'<section class="bench" id="bench-{index}"><h3>{_e(bench.id)}{verdict}</h3>')
        out.append(distribution_svg(rows, seed=index))
        points = []
        for saved in history:
            found = saved.by_id().get(bench.id)
            if found is not None and found.processes and saved.created != suite.created:
                points.append((saved.name, found.summary.median, found.summary.ci_low, found.summary.ci_high))
        points.append((suite.name, bench.summary.median, bench.summary.ci_low, bench.summary.ci_high))
        if len(points) > 1:
            out.append("<h4>History</h4>" + history_svg(points))
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out)
