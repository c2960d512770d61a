"""The instrumentation statistics as a table (rich): one row per name.

Colour and width follow :func:`aether_perf.report.text.make_console`: colour on a terminal (or as
``NO_COLOR``/``FORCE_COLOR`` say), plain text 120 columns wide when piped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TextIO

from aether_perf.errors import InvalidArgument
from aether_perf.instrumentation.metrics import Stats, registry

__all__ = ["SORT_KEYS", "report"]

_SORTS: dict[str, Callable[[Stats], tuple[float, str]]] = {
    "total": lambda s: (-s.total, s.name),
    "count": lambda s: (-s.count, s.name),
    "mean": lambda s: (-s.mean, s.name),
    "max": lambda s: (-s.max, s.name),
    "p99": lambda s: (-s.p99, s.name),
    "name": lambda s: (0.0, s.name),
}
#: The orders ``report(sort=...)`` accepts (largest first, except ``name``).
SORT_KEYS = tuple(_SORTS)


def _seconds(value: float) -> str:
    from aether_perf.units import format_duration

    return "-" if math.isnan(value) else format_duration(value)


def report(
    file: TextIO | None = None,
    color: bool | None = None,
    sort: str = "total",
    *,
    stats: Mapping[str, Stats] | None = None,
) -> None:
    """Print the statistics of every instrumented name with values (or of ``stats``, as
    :func:`~aether_perf.instrumentation.registry` returns them) to ``file`` (stdout if None).

    Columns: name, count, total, mean, min, p50, p90, p99, max; rows ordered by ``sort`` (one of
    ``SORT_KEYS``: total, count, mean, max, p99 largest first, or name).
    """
    if sort not in _SORTS:
        raise InvalidArgument(f"sort must be one of {', '.join(SORT_KEYS)}, got {sort!r}")
    # Imported here: the text report module loads the profile analyses (numpy), which an
    # instrumented program should not pay for unless it prints a report.
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from aether_perf.report.text import make_console

    rows = sorted((stats if stats is not None else registry()).values(), key=_SORTS[sort])
    console = make_console(file, color)
    if not rows:
        console.print(Text("no instrumented calls recorded", style="yellow"))
        return
    calls = sum(s.count for s in rows)
    table = Table(
        box=box.SIMPLE_HEAD,
        title=f"Instrumentation: {len(rows)} names, {calls:,} calls (sorted by {sort})",
        title_justify="left",
    )
    table.add_column("name", overflow="fold")
    for header in ("count", "total", "mean", "min", "p50", "p90", "p99", "max"):
        table.add_column(header, justify="right", no_wrap=True)
    for s in rows:
        table.add_row(
            Text(s.name, style="bold"),
            f"{s.count:,}",
            Text(_seconds(s.total), style="cyan"),
            _seconds(s.mean),
            _seconds(s.min),
            _seconds(s.p50),
            _seconds(s.p90),
            Text(_seconds(s.p99), style="yellow"),
            _seconds(s.max),
        )
    console.print(table)
