"""What `aether annotate` shows: per file, its source and each line's time, CPU share and bytes.

Built from a Profile (time) and/or a HeapSnapshot (allocations) by the line analyses in
:mod:`aether_perf.analysis.lines`; rendered by :mod:`annotate_text` (terminal) and
:mod:`annotate_html` (a self-contained page per file). A file whose source cannot be read is
still annotated: its recorded lines are shown with the numbers, and ``missing`` says why.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from aether_perf.analysis.lines import LineAlloc, LineStat, heap_lines, line_stats
from aether_perf.analysis.program import is_program_file
from aether_perf.errors import InvalidArgument
from aether_perf.model.heap import HeapSnapshot
from aether_perf.model.profile import Profile

__all__ = ["DEFAULT_HOT_SHARE", "FileAnnotation", "LineRow", "annotate", "match_files"]

#: A line taking at least this percent of the run's time (self) is highlighted as hot.
DEFAULT_HOT_SHARE = 5.0


@dataclass(frozen=True)
class LineRow:
    """The numbers of one line (zeros where nothing was recorded)."""

    line: int
    self_ns: int = 0
    self_pct: float = 0.0
    total_pct: float = 0.0
    cpu_pct: float = 0.0
    samples: int = 0
    alloc_bytes: int = 0
    allocations: int = 0
    growths: int = 0
    hot: bool = False


@dataclass
class FileAnnotation:
    """One file: its source lines (empty when ``missing``), the rows with data, and its totals."""

    file: str
    source: list[str] = field(default_factory=list)
    rows: dict[int, LineRow] = field(default_factory=dict)
    missing: str = ""
    self_ns: int = 0
    self_pct: float = 0.0
    alloc_bytes: int = 0

    def lines(self) -> list[int]:
        """The line numbers to show: every source line, or the recorded ones when it is missing."""
        if self.source:
            return list(range(1, len(self.source) + 1))
        return sorted(line for line in self.rows if line > 0)

    def text(self, line: int) -> str:
        return self.source[line - 1] if 1 <= line <= len(self.source) else ""


def _read_source(path: str) -> tuple[list[str], str]:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read().splitlines(), ""
    except FileNotFoundError:
        return [], "source file not found"
    except OSError as exc:
        return [], f"source file not readable ({exc.strerror or exc})"


def match_files(requested: Sequence[str], known: Sequence[str]) -> dict[str, str]:
    """Map each requested name to a recorded file: the same path, or the recorded path ending in
    ``/name``. A name that matches nothing maps to its absolute path (annotated without data when
    it exists); one that matches several recorded files raises InvalidArgument."""
    result = {}
    absolute = {os.path.abspath(k): k for k in known}
    for name in requested:
        full = os.path.abspath(name)
        if full in absolute:
            result[name] = absolute[full]
            continue
        tail = os.sep + os.path.normpath(name).lstrip(os.sep)
        hits = sorted({k for k in known if k.endswith(tail) or k == name})
        if len(hits) > 1:
            raise InvalidArgument(f"{name!r} matches several recorded files: {', '.join(hits)}")
        result[name] = hits[0] if hits else full
    return result


def annotate(
    profile: Profile | None,
    heap: HeapSnapshot | None = None,
    files: Sequence[str] = (),
    *,
    hot_share: float = DEFAULT_HOT_SHARE,
) -> list[FileAnnotation]:
    """The annotations of ``files`` (as :func:`match_files` resolves them), or of every program
    file with recorded time or allocations, most time first."""
    if profile is None and heap is None:
        raise InvalidArgument("annotate needs a profile or a heap snapshot")
    times: dict[tuple[str, int], LineStat] = line_stats(profile) if profile is not None else {}
    allocs: dict[tuple[str, int], LineAlloc] = heap_lines(heap) if heap is not None else {}
    whole = profile.total_weight_ns if profile is not None else 0
    by_file: dict[str, FileAnnotation] = {}

    def entry(file: str) -> FileAnnotation:
        if file not in by_file:
            by_file[file] = FileAnnotation(file)
        return by_file[file]

    for (file, line), stat in times.items():
        if stat.self_ns == 0 and stat.total_ns == 0:
            continue
        ann = entry(file)
        ann.rows[line] = LineRow(
            line=line,
            self_ns=stat.self_ns,
            self_pct=stat.self_pct,
            total_pct=stat.total_pct,
            cpu_pct=stat.cpu_pct,
            samples=stat.self_samples,
            hot=stat.self_pct >= hot_share,
        )
        ann.self_ns += stat.self_ns
    for (file, line), alloc in allocs.items():
        ann = entry(file)
        row = ann.rows.get(line, LineRow(line=line))
        ann.rows[line] = LineRow(
            line=line,
            self_ns=row.self_ns,
            self_pct=row.self_pct,
            total_pct=row.total_pct,
            cpu_pct=row.cpu_pct,
            samples=row.samples,
            alloc_bytes=alloc.bytes or alloc.live_bytes,
            allocations=alloc.allocations or alloc.live_blocks,
            growths=alloc.growths,
            hot=row.hot,
        )
        ann.alloc_bytes += alloc.bytes or alloc.live_bytes
    for ann in by_file.values():
        ann.self_pct = 100.0 * ann.self_ns / whole if whole else 0.0
    if files:
        mapping = match_files(files, list(by_file))
        chosen = [by_file.get(target) or FileAnnotation(target) for target in mapping.values()]
    else:
        chosen = [a for a in by_file.values() if is_program_file(a.file)]
        chosen.sort(key=lambda a: (-a.self_ns, -a.alloc_bytes, a.file))
    for ann in chosen:
        ann.source, ann.missing = _read_source(ann.file)
    return chosen
