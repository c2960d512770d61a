"""The terminal report of a benchmark run and of a comparison (rich; plain text when piped)."""

from __future__ import annotations

from typing import TextIO

from rich import box
from rich.table import Table
from rich.text import Text

from aether_perf.bench.comparison import ComparisonReport
from aether_perf.bench.formatting import fmt_interval, fmt_p, fmt_pct, fmt_ratio, fmt_time
from aether_perf.bench.results import Suite
from aether_perf.report.text import make_console

__all__ = ["render_comparison", "render_suite"]

_CAPTION = (
    "times are running times: each value minus the run-queue wait it recorded; median: of the "
    "per-process medians, with its bootstrap 95% CI; IQR, min, stdev, outliers (Tukey): over all values; "
    "runs: processes x values; reruns: values measured again after a run-queue wait; noisy: values "
    "still over the wait limit (wall times, mean and more in --json/--html)"
)
_STYLES = {"regression": "bold red", "improvement": "green", "insufficient data": "yellow"}


def render_suite(suite: Suite, file: TextIO | None = None, color: bool | None = None) -> None:
    """One row per benchmark: median with its 95% interval, spread, and the noise it saw."""
    console = make_console(file, color)
    ident = suite.identity
    commit = f" git {ident.git_commit[:10]}{'+dirty' if ident.git_dirty else ''}" if ident.git_commit else ""
    console.print(
        Text(
            f"{suite.name}: {len(suite.benchmarks)} benchmarks, {ident.python_implementation} "
            f"{ident.python_version} on {ident.machine_id}{commit}",
            style="bold",
        )
    )
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, caption=_CAPTION, caption_justify="left")
    for heading in (
        "benchmark",
        "median",
        "95% CI",
        "IQR",
        "min",
        "stdev",
        "outliers",
        "runs",
        "reruns/noisy",
    ):
        table.add_column(heading, justify="left" if heading == "benchmark" else "right", no_wrap=True)
    for bench in suite.benchmarks:
        if not bench.processes:
            continue
        s = bench.summary
        table.add_row(
            bench.id,
            fmt_time(s.median),
            fmt_interval(s.ci_low, s.ci_high),
            fmt_time(s.iqr),
            fmt_time(s.min),
            fmt_time(s.stdev),
            str(s.outliers),
            f"{s.processes}x{s.values // max(s.processes, 1)}",
            f"{bench.reruns}/{bench.contaminated}",
        )
    console.print(table)


def render_comparison(
    report: ComparisonReport, file: TextIO | None = None, color: bool | None = None
) -> None:
    """One row per benchmark: both medians, the ratio with its interval, the adjusted p-value,
    the minimum detectable change and the verdict; then the warnings and the gate's rule."""
    console = make_console(file, color)
    console.print(Text(f"{report.head_name} against {report.base_name}", style="bold"))
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for heading in (
        "benchmark",
        report.base_name,
        report.head_name,
        "ratio [95% CI]",
        "p (Holm)",
        "min. detectable",
        "instr. ratio",
        "verdict",
    ):
        table.add_column(heading, justify="left" if heading in ("benchmark", "verdict") else "right")
    for c in report.comparisons:
        table.add_row(
            c.id,
            fmt_time(c.base_median),
            fmt_time(c.head_median),
            fmt_ratio(c),
            fmt_p(c.p_adjusted),
            fmt_pct(c.min_detectable),
            "-" if c.instructions_ratio is None else f"x{c.instructions_ratio:.3f}",
            Text(c.verdict, style=_STYLES.get(c.verdict, "")),
        )
    console.print(table)
    console.print(
        f"regression: slower by more than {fmt_pct(report.threshold)} and significant "
        f"(Mann-Whitney U, Holm-adjusted p < {report.alpha:g}, 95% CI of the ratio entirely beyond "
        "the threshold); "
        f"{len(report.regressions)} found"
    )
