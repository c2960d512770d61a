"""The load test's text summary (rich): stages, transactions, errors by kind, thresholds."""

from __future__ import annotations

import math
from typing import TextIO

from rich import box
from rich.table import Table
from rich.text import Text

from aether_perf.load.result import LoadTestResult, TransactionStats
from aether_perf.load.thresholds import ThresholdOutcome
from aether_perf.report.text import make_console

__all__ = ["render_summary"]


def _ms(seconds_ns: float) -> str:
    return "-" if math.isnan(seconds_ns) else f"{seconds_ns / 1e6:,.1f}"


def _latencies(stats: TransactionStats, open_model: bool) -> list[str]:
    h = stats.corrected
    if h.count:
        p50, p95, p99, p999 = h.percentiles([50, 95, 99, 99.9])
        cells = [_ms(p50), _ms(p95), _ms(p99), _ms(p999), _ms(float(h.max))]
    else:
        cells = ["-"] * 5
    if open_model:
        cells.append(_ms(stats.raw.percentile(99)) if stats.raw.count else "-")
    return cells


def _table(title: str, first: str, open_model: bool) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column(first)
    for name in ("load", "users", "requests", "req/s", "errors"):
        table.add_column(name, justify="right")
    for name in ("p50 ms", "p95 ms", "p99 ms", "p99.9 ms", "max ms"):
        table.add_column(name, justify="right")
    if open_model:
        table.add_column("raw p99 ms", justify="right")
    return table


def render_summary(
    result: LoadTestResult,
    outcomes: list[ThresholdOutcome] | None = None,
    file: TextIO | None = None,
    color: bool | None = None,
) -> None:
    """Print the summary of ``result`` (and the threshold outcomes) to ``file`` (stdout)."""
    console = make_console(file, color)
    open_model = result.model == "open"
    engine = f"engine {result.engine}" + (f", {result.workers} workers" if result.workers > 1 else "")
    head = Text(result.scenario, style="bold")
    head.append(f": {result.model} model, {result.host}, {engine}, {result.duration:g}s")
    if open_model:
        head.append(" (latency from the intended start; raw = from the actual start)")
    if result.interrupted:
        head.append(" INTERRUPTED", style="bold red")
    console.print(head)
    table = _table("stages", "stage", open_model)
    for stage in result.stages:
        total = stage.total
        s = stage.stage
        load = f"{s.users} users" if s.users is not None else f"{s.rate:.4g}/s"
        table.add_row(
            stage.name,
            load,
            str(stage.peak_users),
            f"{total.count:,}",
            f"{stage.throughput:,.1f}",
            f"{total.error_count:,}",
            *_latencies(total, open_model),
        )
    console.print(table)
    txns = _table("transactions (whole run)", "transaction", open_model)
    for name, stats in sorted(result.transactions.items()):
        rps = stats.count / result.duration if result.duration else math.nan
        txns.add_row(
            name,
            "",
            "",
            f"{stats.count:,}",
            f"{rps:,.1f}",
            f"{stats.error_count:,}",
            *_latencies(stats, open_model),
        )
    console.print(txns)
    errors: dict[str, int] = {}
    for stats in result.transactions.values():
        for kind, n in stats.errors.items():
            errors[kind] = errors.get(kind, 0) + n
    if errors:
        console.print(Text("errors by kind", style="bold red"))
        for kind, n in sorted(errors.items(), key=lambda item: -item[1]):
            console.print(Text(f"  {n:>8,}  {kind}"))
    if open_model:
        console.print(f"late starts: {result.late:,}   dropped starts: {result.dropped:,}")
    for outcome in outcomes or []:
        style = "green" if outcome.passed else "bold red"
        console.print(Text("threshold ").append(outcome.describe(), style=style))
