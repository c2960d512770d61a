"""`aether annotate` on a terminal: the source with time, CPU% and bytes in the margin.

    line     time   time%   cpu%  total%     alloc  | source
      12  0.412 s   41.2%  41.2%   41.2%  72.3 MiB >|     for i in range(count):

``time`` is the line's self time, ``time%`` its share of the run, ``cpu%`` the share spent running
(not idle: equal to time% in cpu mode), ``total%`` the share with the line anywhere on the stack
(a call's line includes the callee: what line_profiler shows), ``alloc`` the bytes allocated
there since tracking started.
Hot lines (``>`` in the gutter) are bold red on a terminal; when piped the output is plain and the
``>`` marker alone shows them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from rich.text import Text

from aether_perf.report.annotate_data import FileAnnotation, LineRow
from aether_perf.report.text import make_console

__all__ = ["format_bytes", "render_annotations"]

_HEADER = f"{'line':>6} {'time':>9} {'time%':>6} {'cpu%':>6} {'total%':>6} {'alloc':>10}  | source"


def format_bytes(n: int) -> str:
    if n <= 0:
        return ""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _margin(row: LineRow | None) -> str:
    if row is None:
        return f"{'':>9} {'':>6} {'':>6} {'':>6} {'':>10}"
    time = f"{row.self_ns / 1e9:.3f} s" if row.self_ns else ""
    pct = f"{row.self_pct:.1f}%" if row.self_ns else ""
    cpu = f"{row.cpu_pct:.1f}%" if row.self_ns else ""
    total = f"{row.total_pct:.1f}%" if row.total_pct else ""
    return f"{time:>9} {pct:>6} {cpu:>6} {total:>6} {format_bytes(row.alloc_bytes):>10}"


def render_annotations(
    files: Sequence[FileAnnotation], *, file: TextIO | None = None, color: bool | None = None
) -> None:
    """Print each file's annotated source (see the module doc)."""
    console = make_console(file, color)
    for index, ann in enumerate(files):
        if index:
            console.print()
        title = Text(f"== {ann.file}", style="bold")
        facts = []
        if ann.self_ns:
            facts.append(f"{ann.self_ns / 1e9:.3f} s, {ann.self_pct:.1f}% of the run")
        if ann.alloc_bytes:
            facts.append(f"{format_bytes(ann.alloc_bytes)} allocated")
        if facts:
            title.append(f" ({'; '.join(facts)})")
        console.print(title)
        if ann.missing:
            shown = "the recorded lines only" if ann.rows else "nothing was recorded for it"
            console.print(Text(f"note: {ann.missing}: {ann.file}; showing {shown}", style="yellow"))
        console.print(Text(_HEADER, style="dim"))
        for line in ann.lines():
            row = ann.rows.get(line)
            hot = row is not None and row.hot
            text = Text(f"{line:>6} {_margin(row)} {'>' if hot else ' '}| ")
            text.append(ann.text(line).expandtabs(4) if not ann.missing else "<source not available>")
            if hot:
                text.stylize("bold red")
            elif row is None or (not row.self_ns and not row.alloc_bytes and not row.total_pct):
                text.stylize("dim")
            console.print(text, crop=False, overflow="ignore", no_wrap=True)
