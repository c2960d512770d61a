"""Allocation findings: lines that grow one object again and again, and allocation-heavy lines.

Both read the per-line totals since tracking started (``HeapSnapshot.meta.extra["sites"]``, see
:func:`aether_perf.analysis.lines.heap_lines`), not only what is live at the end: the reallocations
of a list that was appended to a million times are gone from the live heap, but not from the
totals.

- ``alloc.growth`` (warning): a line whose reallocs grew blocks at least ``min_growths`` times and
  moved at least ``min_bytes`` doing so: ``list.append`` / ``bytes +=`` / ``bytearray.extend`` in a
  loop, each growth copying the object so far (CPython over-allocates lists by about 1/8, so a
  million appends cost about a hundred reallocations of an ever larger array).
- ``alloc.heavy`` (info): a line that allocated at least ``heavy_share`` percent of all bytes
  allocated and at least ``heavy_bytes``: the place to look when the allocator is busy.
"""

from __future__ import annotations

from aether_perf.analysis.lines import heap_lines
from aether_perf.analysis.program import is_program_file
from aether_perf.model.finding import Finding, Location
from aether_perf.model.heap import HeapSnapshot

__all__ = [
    "DEFAULT_HEAVY_BYTES",
    "DEFAULT_HEAVY_SHARE",
    "DEFAULT_MIN_GROWTHS",
    "DEFAULT_MIN_GROWTH_BYTES",
    "GROWTH_RULE",
    "HEAVY_RULE",
    "allocation_findings",
]

GROWTH_RULE = "alloc.growth"
HEAVY_RULE = "alloc.heavy"
DEFAULT_MIN_GROWTHS = 32
DEFAULT_MIN_GROWTH_BYTES = 1 << 20
DEFAULT_HEAVY_SHARE = 25.0
DEFAULT_HEAVY_BYTES = 16 << 20


def _mib(nbytes: float) -> str:
    return f"{nbytes / (1 << 20):.1f} MiB"


def allocation_findings(
    snapshot: HeapSnapshot,
    *,
    min_growths: int = DEFAULT_MIN_GROWTHS,
    min_growth_bytes: int = DEFAULT_MIN_GROWTH_BYTES,
    heavy_share: float = DEFAULT_HEAVY_SHARE,
    heavy_bytes: int = DEFAULT_HEAVY_BYTES,
) -> list[Finding]:
    """Growth findings first (most growths first), then allocation-heavy lines (most bytes first).

    A snapshot without per-line totals (saved before they existed) gives no findings."""
    lines = [row for row in heap_lines(snapshot).values() if is_program_file(row.file)]
    total = snapshot.meta.allocated_bytes or sum(row.bytes for row in lines) or 1
    estimated = " (estimated from sampled allocations)" if snapshot.meta.mode == "sampled" else ""
    findings = []
    for row in sorted(lines, key=lambda r: (-r.growths, r.file, r.line)):
        if row.growths < min_growths or row.bytes < min_growth_bytes:
            continue
        findings.append(
            Finding(
                rule=GROWTH_RULE,
                title="repeated growth reallocations",
                severity="warning",
                message=(
                    f"{row.growths:,} reallocations grew an object allocated on this line "
                    f"({_mib(row.bytes)} allocated here in all{estimated}): it is built up "
                    "piece by piece and copied as it grows"
                ),
                measured=row.growths,
                threshold=min_growths,
                unit="reallocations",
                suggestions=(
                    "build it in one step: list(range(n)) or list(generator) for a list, "
                    "[value] * n to preallocate, b''.join(parts) or a bytearray for bytes, "
                    "or a numpy array of the final size",
                ),
                location=Location(row.file, row.line, row.function),
                evidence={
                    "growths": row.growths,
                    "allocations": row.allocations,
                    "allocated_bytes": row.bytes,
                    "live_bytes": row.live_bytes,
                    "mode": snapshot.meta.mode,
                },
            )
        )
    for row in sorted(lines, key=lambda r: (-r.bytes, r.file, r.line)):
        share = 100.0 * row.bytes / total
        if share < heavy_share or row.bytes < heavy_bytes:
            continue
        findings.append(
            Finding(
                rule=HEAVY_RULE,
                title="allocation-heavy line",
                severity="info",
                message=(
                    f"{share:.1f}% of all bytes allocated ({_mib(row.bytes)} in "
                    f"{row.allocations:,} allocations{estimated}) come from this line"
                ),
                measured=round(share, 2),
                threshold=heavy_share,
                unit="%",
                suggestions=(
                    "reuse objects or buffers across iterations, avoid temporary copies "
                    "(slices, concatenation), or use arrays of machine types (array, numpy)",
                ),
                location=Location(row.file, row.line, row.function),
                evidence={
                    "allocations": row.allocations,
                    "allocated_bytes": row.bytes,
                    "live_bytes": row.live_bytes,
                    "mode": snapshot.meta.mode,
                },
            )
        )
    return findings
