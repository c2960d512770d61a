"""`aether annotate --html DIR`: one self-contained HTML page per annotated file, and an index.

Each page is the file's source with the margin of the terminal view (time, time%, cpu%, bytes
allocated); a line's background gets redder with its share of the run, and hot lines are marked.
Hovering a line shows the tooltip an editor would (time, CPU share, bytes, allocations). Plain
HTML and inline CSS: no script, no network.
"""

from __future__ import annotations

import hashlib
import html
import os
from collections.abc import Sequence
from pathlib import Path

from aether_perf.fileio import atomic_write_text
from aether_perf.report.annotate_data import FileAnnotation, LineRow
from aether_perf.report.annotate_text import format_bytes

__all__ = ["page_name", "render_page", "write_pages"]

_CSS = """
body{font:13px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;margin:1.5em;color:#222}
h1{font-size:16px} table{border-collapse:collapse} td{padding:0 .6em;white-space:pre}
td.n{text-align:right;color:#555} tr.hot td.src{font-weight:bold} td.mark{color:#c00}
tr:hover{outline:1px solid #888} th{text-align:right;color:#777;font-weight:normal;padding:0 .6em}
th.src{text-align:left} .note{color:#a60} a{color:#0645ad}
"""


def page_name(file: str) -> str:
    """A stable, unique page name for ``file``: its base name and a short hash of the full path."""
    digest = hashlib.sha1(file.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{Path(file).name or 'file'}-{digest}.html"


def _tooltip(row: LineRow) -> str:
    parts = []
    if row.self_ns:
        parts.append(f"time {row.self_ns / 1e6:.2f} ms ({row.self_pct:.1f}% of the run)")
        parts.append(f"CPU {row.cpu_pct:.1f}%")
    if row.total_pct:
        parts.append(f"with callees {row.total_pct:.1f}%")
    if row.alloc_bytes:
        parts.append(f"allocated {row.alloc_bytes:,} bytes in {row.allocations:,} allocations")
    if row.growths:
        parts.append(f"{row.growths:,} growth reallocations")
    return "; ".join(parts)


def render_page(ann: FileAnnotation) -> str:
    """The HTML page of one file."""
    esc = html.escape
    rows = []
    top = max((r.self_pct for r in ann.rows.values()), default=0.0) or 1.0
    for line in ann.lines():
        row = ann.rows.get(line)
        source = esc(ann.text(line)) if not ann.missing else "&lt;source not available&gt;"
        if row is None:
            rows.append(
                f'<tr id="L{line}"><td class="n">{line}</td><td class="n"></td><td class="n"></td>'
                '<td class="n"></td><td class="n"></td><td class="n"></td><td class="mark"></td>'
                f'<td class="src">{source}</td></tr>'
            )
            continue
        alpha = 0.6 * row.self_pct / top
        style = f' style="background:rgba(220,40,20,{alpha:.3f})"' if row.self_ns else ""
        time = f"{row.self_ns / 1e9:.3f} s" if row.self_ns else ""
        pct = f"{row.self_pct:.1f}%" if row.self_ns else ""
        cpu = f"{row.cpu_pct:.1f}%" if row.self_ns else ""
        total = f"{row.total_pct:.1f}%" if row.total_pct else ""
        hot = ' class="hot"' if row.hot else ""
        rows.append(
            f'<tr id="L{line}"{hot}{style} title="{esc(_tooltip(row))}">'
            f'<td class="n">{line}</td><td class="n">{time}</td><td class="n">{pct}</td>'
            f'<td class="n">{cpu}</td><td class="n">{total}</td>'
            f'<td class="n">{esc(format_bytes(row.alloc_bytes))}</td>'
            f'<td class="mark">{">" if row.hot else ""}</td><td class="src">{source}</td></tr>'
        )
    note = ""
    if ann.missing:
        note = f'<p class="note">{esc(ann.missing)}: {esc(ann.file)}; showing the recorded lines only</p>'
    summary = []
    if ann.self_ns:
        summary.append(f"{ann.self_ns / 1e9:.3f} s, {ann.self_pct:.1f}% of the run")
    if ann.alloc_bytes:
        summary.append(f"{format_bytes(ann.alloc_bytes)} allocated")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(Path(ann.file).name)} - aether annotate</title><style>{_CSS}</style></head><body>"
        f'<p><a href="index.html">all files</a></p><h1>{esc(ann.file)}</h1>'
        f"<p>{esc('; '.join(summary))}</p>{note}"
        "<table><tr><th>line</th><th>time</th><th>time%</th><th>cpu%</th><th>total%</th><th>alloc</th><th></th>"
        f'<th class="src">source</th></tr>{"".join(rows)}</table></body></html>\n'
    )


def write_pages(files: Sequence[FileAnnotation], directory: str | os.PathLike[str]) -> list[Path]:
    """Write one page per file and ``index.html`` into ``directory`` (created if needed); returns
    the paths written, the index last."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    items = []
    for ann in files:
        name = page_name(ann.file)
        with atomic_write_text(out / name) as handle:
            handle.write(render_page(ann))
        written.append(out / name)
        facts = f"{ann.self_ns / 1e9:.3f} s ({ann.self_pct:.1f}%)" if ann.self_ns else ""
        if ann.alloc_bytes:
            facts += f" {format_bytes(ann.alloc_bytes)} allocated"
        link = f'<a href="{html.escape(name)}">{html.escape(ann.file)}</a>'
        items.append(f"<li>{link} {html.escape(facts)}</li>")
    index = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>aether annotate</title>'
        f"<style>{_CSS}</style></head><body><h1>aether annotate</h1><ul>{''.join(items)}</ul></body></html>\n"
    )
    with atomic_write_text(out / "index.html") as handle:
        handle.write(index)
    written.append(out / "index.html")
    return written
