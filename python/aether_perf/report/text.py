"""Text reports (rich): a profile summary with its top functions, and the call tree.

Colour only goes to a terminal unless asked: ``color=None`` follows ``NO_COLOR`` and
``FORCE_COLOR`` (https://no-color.org, https://force-color.org) and otherwise whether the output is
a terminal; ``color=False`` writes plain text with no escape sequence at all. Output that is not a
terminal is laid out 120 columns wide, so it is the same from run to run.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from aether_perf.analysis.calltree import CallNode, call_tree
from aether_perf.analysis.threads import thread_order, thread_sample_counts, thread_totals
from aether_perf.analysis.top import top_functions
from aether_perf.errors import InvalidArgument
from aether_perf.model.profile import Profile
from aether_perf.report.paths import short_path
from aether_perf.units import format_duration

__all__ = ["PLAIN_WIDTH", "make_console", "render_call_tree", "render_summary"]

#: Width of the layout when the output is not a terminal.
PLAIN_WIDTH = 120
#: Threads listed in the summary before the rest are counted as "... N more".
_THREADS_SHOWN = 10


def _isatty(file: TextIO) -> bool:
    try:
        return bool(file.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def make_console(file: TextIO | None = None, color: bool | None = None) -> Console:
    """A rich Console on ``file`` (stdout if None), coloured as the module doc says."""
    out = file if file is not None else sys.stdout
    tty = _isatty(out)
    if color is None:
        if os.environ.get("NO_COLOR"):
            color = False
        elif os.environ.get("FORCE_COLOR"):
            color = True
        else:
            color = tty
    return Console(
        file=out,
        force_terminal=color,
        force_jupyter=False,
        force_interactive=False,
        color_system=("auto" if tty else "standard") if color else None,
        no_color=not color,
        width=None if tty else PLAIN_WIDTH,
        markup=False,
        emoji=False,
        highlight=False,
        legacy_windows=False,
        soft_wrap=False,
    )


def _shown(text: str) -> str:
    """``text`` printable on any UTF-8 stream: lone surrogates become ``\\udcXX`` escapes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _ns(ns: int) -> str:
    return format_duration(ns / 1e9)


def _pct(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def _rate(samples: int, seconds: float) -> str:
    return f"{samples / seconds:,.0f}/s" if seconds > 0 else "-"


def _header(profile: Profile) -> Text:
    meta = profile.meta
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(meta.start_time)) if meta.start_time else ""
    title = Text(f"aether {meta.mode} profile", style="bold")
    if meta.program:
        title.append(_shown(f" of {meta.program}"))
    if meta.python_version:
        title.append(f", Python {meta.python_version}")
    if started:
        title.append(f", started {started}")
    samples = len(profile)
    rate = f" ({1 / meta.interval:,.0f}/s)" if meta.interval > 0 else ""
    dropped = f"{meta.dropped:,}"
    if meta.dropped:
        dropped += f" ({_pct(meta.dropped, samples + meta.dropped):.1f}%)"
    facts = (
        f"duration {format_duration(meta.duration)}  interval {format_duration(meta.interval)}{rate}  "
        f"samples {samples:,}  dropped {dropped}  threads {len(profile.threads)}"
    )
    title.append("\n" + facts, style="dim" if meta.dropped == 0 else "yellow")
    return title


def _threads_table(profile: Profile) -> Table:
    weights = thread_totals(profile)
    counts = thread_sample_counts(profile)
    whole = profile.total_weight_ns
    table = Table(
        box=box.SIMPLE_HEAD, title="Threads (achieved sample rate per thread)", title_justify="left"
    )
    for header in ("tid", "name", "samples", "rate", "time", "%"):
        table.add_column(header, justify="left" if header == "name" else "right")
    order = thread_order(profile)
    for tid in order[:_THREADS_SHOWN]:
        table.add_row(
            str(tid),
            Text(_shown(profile.threads[tid].name)),
            f"{counts[tid]:,}",
            _rate(counts[tid], profile.meta.duration),
            _ns(weights[tid]),
            f"{_pct(weights[tid], whole):.1f}%",
        )
    if len(order) > _THREADS_SHOWN:
        table.add_row("", Text(f"... {len(order) - _THREADS_SHOWN} more threads", style="dim"))
    return table


def _functions_table(profile: Profile, top: int) -> Table:
    stats = top_functions(profile, top, by="self")
    table = Table(box=box.SIMPLE_HEAD, title=f"Top {len(stats)} functions by self time", title_justify="left")
    for header in ("self %", "total %", "self time", "total time", "samples"):
        table.add_column(header, justify="right", no_wrap=True)
    table.add_column("function", overflow="fold")
    table.add_column("file:first_line", overflow="fold", style="dim")
    for stat in stats:
        table.add_row(
            Text(f"{stat.self_pct:.1f}%", style=_heat(stat.self_pct)),
            f"{stat.total_pct:.1f}%",
            _ns(stat.self_ns),
            _ns(stat.total_ns),
            f"{stat.self_samples:,}",
            Text(_shown(stat.function), style="bold"),
            Text(_shown(f"{short_path(stat.file)}:{stat.first_line}")),
        )
    return table


def _heat(pct: float) -> str:
    return "bold red" if pct >= 20 else "yellow" if pct >= 5 else ""


def render_summary(
    profile: Profile, *, top: int = 20, file: TextIO | None = None, color: bool | None = None
) -> None:
    """Print the profile's header, its threads and its ``top`` functions by self time.

    The function table has the columns self %, total %, self time, total time, samples (the
    samples with the function as the leaf), function and file:first_line; percentages are of the
    profile's total weight.
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise InvalidArgument(f"top must be a positive integer, got {top!r}")
    console = make_console(file, color)
    console.print(_header(profile))
    if len(profile) == 0:
        console.print(Text("\nno samples", style="yellow"))
        return
    console.print()
    console.print(_threads_table(profile))
    console.print(_functions_table(profile, top))


def _node_label(node: CallNode, whole: int) -> Text:
    pct = _pct(node.total_ns, whole)
    label = Text(f"{pct:5.1f}% ", style=_heat(pct))
    label.append(f"{_ns(node.total_ns)} ")
    if node.self_ns:
        label.append(f"(self {_ns(node.self_ns)}) ", style="dim")
    label.append(_shown(node.function), style="bold")
    if node.file:
        label.append(_shown(f"  {short_path(node.file)}:{node.first_line}"), style="dim")
    return label


def render_call_tree(
    profile: Profile,
    *,
    file: TextIO | None = None,
    color: bool | None = None,
    min_pct: float = 1.0,
    max_depth: int = 30,
) -> None:
    """Print the call tree, root first; each node shows its % of the total, total and self time.

    Nodes under ``min_pct`` percent of the total are folded into one "... N more" line per
    parent; nodes deeper than ``max_depth`` are not shown (their parent says how many).
    """
    if isinstance(max_depth, bool) or not isinstance(max_depth, int) or max_depth < 1:
        raise InvalidArgument(f"max_depth must be a positive integer, got {max_depth!r}")
    if not 0 <= min_pct <= 100:
        raise InvalidArgument(f"min_pct must be between 0 and 100, got {min_pct!r}")
    console = make_console(file, color)
    root = call_tree(profile)
    whole = root.total_ns
    tree = Tree(Text(f"{_ns(whole)} in {root.samples:,} samples ({profile.meta.mode} time)", style="bold"))
    pending: list[tuple[CallNode, Tree, int]] = [(root, tree, 0)]
    while pending:
        node, branch, depth = pending.pop()
        shown: list[tuple[CallNode, Tree, int]] = []
        hidden = hidden_ns = 0
        for child in node.children.values():
            if depth + 1 > max_depth or _pct(child.total_ns, whole) < min_pct:
                hidden += 1
                hidden_ns += child.total_ns
                continue
            shown.append((child, branch.add(_node_label(child, whole)), depth + 1))
        if hidden:
            reason = f"deeper than {max_depth}" if depth + 1 > max_depth else f"under {min_pct:g}%"
            branch.add(Text(f"... {hidden} more {reason} ({_ns(hidden_ns)})", style="dim"))
        pending.extend(reversed(shown))
    console.print(tree)
