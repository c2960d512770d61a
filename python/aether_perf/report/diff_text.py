"""Text report of a profile diff (rich): the functions and stacks whose share changed most.

Colour follows :func:`aether_perf.report.text.make_console`: on a terminal (or when asked) growth
is red and shrinkage blue, as in the differential flamegraph; piped output is plain text.
"""

from __future__ import annotations

from typing import TextIO

from rich import box
from rich.table import Table
from rich.text import Text

from aether_perf.analysis.diff import FunctionPath, ProfileDiff
from aether_perf.errors import InvalidArgument
from aether_perf.report.text import make_console
from aether_perf.units import format_duration

__all__ = ["render_diff"]

_NO_FRAMES = "<no Python frames>"


def _shown(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _delta(pp: float) -> Text:
    text = f"{pp:+.1f}pp"
    if text in ("+0.0pp", "-0.0pp"):
        return Text("0.0pp", style="dim")
    return Text(text, style="bold red" if pp > 0 else "bold blue")


def _path_text(path: FunctionPath) -> Text:
    if not path:
        return Text(_NO_FRAMES, style="dim")
    text = Text()
    for index, (function, _file, _line) in enumerate(path):
        last = index == len(path) - 1
        text.append(_shown(function), style="bold" if last else "")
        if not last:
            text.append(" > ", style="dim")
    return text


def _header(diff: ProfileDiff) -> Text:
    ratio = (
        f" (x{diff.new_total_ns / diff.base_total_ns:.2f})"
        if diff.base_total_ns and diff.new_total_ns
        else ""
    )
    text = Text("Profile diff", style="bold")
    text.append(" (shares of each profile's total; pp = percentage points, + grew, - shrank)\n", style="dim")
    text.append(
        f"base: {format_duration(diff.base_total_ns / 1e9)} in {diff.base_samples:,} samples   "
        f"new: {format_duration(diff.new_total_ns / 1e9)} in {diff.new_samples:,} samples{ratio}"
    )
    return text


def _functions_table(diff: ProfileDiff, top: int) -> Table:
    shown = diff.functions[:top]
    table = Table(
        box=box.SIMPLE_HEAD,
        title=f"Top {len(shown)} functions by change of self share",
        title_justify="left",
    )
    for header in ("Δ self", "base self", "new self", "Δ total", "base total", "new total"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("function", overflow="fold")
    table.add_column("file:first_line", overflow="fold", style="dim")
    for entry in shown:
        table.add_row(
            _delta(entry.delta_self_pct),
            f"{entry.base_self_pct:.1f}%",
            f"{entry.new_self_pct:.1f}%",
            _delta(entry.delta_total_pct),
            f"{entry.base_total_pct:.1f}%",
            f"{entry.new_total_pct:.1f}%",
            Text(_shown(entry.function), style="bold"),
            Text(_shown(f"{entry.file}:{entry.first_line}")),
        )
    return table


def _paths_table(diff: ProfileDiff, top: int) -> Table:
    shown = diff.paths[:top]
    table = Table(
        box=box.SIMPLE_HEAD, title=f"Top {len(shown)} stacks by change of share", title_justify="left"
    )
    for header in ("Δ", "base", "new"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("stack (root > leaf)", overflow="fold")
    for entry in shown:
        table.add_row(
            _delta(entry.delta_pct), f"{entry.base_pct:.1f}%", f"{entry.new_pct:.1f}%", _path_text(entry.path)
        )
    return table


def render_diff(
    diff: ProfileDiff, *, top: int = 20, file: TextIO | None = None, color: bool | None = None
) -> None:
    """Print the ``top`` functions and the ``top`` stacks whose share changed most.

    The function table has the columns Δ self, base self, new self, Δ total, base total, new total
    (shares in %, changes in percentage points ``pp``), function and file:first_line; the stack
    table Δ, base, new and the stack's functions root first.
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise InvalidArgument(f"top must be a positive integer, got {top!r}")
    console = make_console(file, color)
    console.print(_header(diff))
    if not diff.functions and not diff.paths:
        console.print(Text("\nno samples in either profile", style="yellow"))
        return
    console.print()
    console.print(_functions_table(diff, top))
    console.print(_paths_table(diff, top))
