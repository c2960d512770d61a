"""Findings as text: one block per finding (severity, rule, message, where, what to try)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TextIO

from rich.table import Table
from rich.text import Text

from aether_perf.model.finding import Finding
from aether_perf.report.text import make_console

__all__ = ["render_findings", "render_tables"]

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def render_findings(
    findings: Sequence[Finding],
    *,
    file: TextIO | None = None,
    color: bool | None = None,
    title: str = "Findings",
) -> None:
    """Print ``findings`` (or a line saying there are none)."""
    console = make_console(file, color)
    console.print()
    if not findings:
        console.print(Text(f"{title}: none", style="green"))
        return
    console.print(Text(f"{title} ({len(findings)})", style="bold"))
    for f in findings:
        line = Text()
        line.append(f"[{f.severity}] ", style=_STYLE.get(f.severity, ""))
        line.append(f"{f.rule}: ", style="bold")
        line.append(f.message)
        console.print(line)
        if f.location is not None:
            where = f"{f.location.file}:{f.location.line}" if f.location.line else f.location.file
            func = f" in {f.location.function}" if f.location.function else ""
            console.print(Text(f"    at {where}{func}", style="dim"))
        for tip in f.suggestions[:2]:
            console.print(Text(f"    - {tip}", style="dim"))


def render_tables(
    tables: Sequence[dict[str, Any]], *, file: TextIO | None = None, color: bool | None = None
) -> None:
    """Print tables of the shape ``report.concurrency_tables`` builds."""
    console = make_console(file, color)
    for spec in tables:
        table = Table(title=str(spec["title"]), title_justify="left", box=None, pad_edge=False)
        for column in spec["columns"]:
            table.add_column(str(column), overflow="fold")
        for row in spec["rows"]:
            table.add_row(*(f"{cell:,}" if isinstance(cell, int) else str(cell) for cell in row))
        console.print()
        console.print(table)
