"""Heap analyses: the leak report.

A *leak* here is what was allocated after tracking started and is still live when the snapshot was
taken (valgrind's "definitely/possibly lost" has no meaning for a garbage-collected heap). Leaks
are grouped by stack (by frame content, so equal stacks merge), with bytes, blocks and the first
and last allocation time of each group, the latter showing growth over time. In sampled mode the
bytes and blocks are the unbiased estimates the snapshot's rows carry.

Each stack has an *origin* (:mod:`aether_perf.analysis.leak_origin`): the program's code, or
imports, standard-library caches, our own tracker, or no Python frames at all. By default only the
program's stacks are leaks; the others are totalled per origin in ``excluded``, so a leak-free
script reports zero and ``--fail-over`` judges only the program.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from aether_perf.analysis.leak_origin import NOISE_ORIGINS, ORIGINS, leak_origin
from aether_perf.errors import InvalidArgument
from aether_perf.model.frame import Frame
from aether_perf.model.heap import HeapSnapshot

__all__ = ["NOISE_ORIGINS", "ORIGINS", "LeakGroup", "LeakReport", "OriginTotal", "leak_report"]


@dataclass(frozen=True)
class LeakGroup:
    """The live blocks of one stack (``frames`` root first; empty for rows with no Python frames).

    ``first_alloc_ns`` and ``last_alloc_ns`` are the earliest and latest allocation times of the
    group's blocks, in nanoseconds since tracking started.
    """

    frames: tuple[Frame, ...]
    bytes: int
    blocks: int
    first_alloc_ns: int
    last_alloc_ns: int
    origin: str = "user"


@dataclass(frozen=True)
class OriginTotal:
    """The live blocks of one origin left out of a leak report: bytes, blocks and stacks."""

    bytes: int
    blocks: int
    stacks: int


@dataclass(frozen=True)
class LeakReport:
    """The leaking stacks, by bytes descending, and their totals.

    ``total_bytes`` and ``total_blocks`` are the sums over ``groups``; ``omitted_stacks``,
    ``omitted_bytes`` and ``omitted_blocks`` count the groups left out for being under
    ``min_bytes``. ``mode`` and ``sample_rate`` come from the snapshot (estimates when sampled).
    ``excluded`` totals, per origin, the stacks whose origin the report left out (see the module
    doc); they are in neither ``groups`` nor the totals.
    """

    total_bytes: int
    total_blocks: int
    groups: list[LeakGroup]
    mode: str = "exact"
    sample_rate: int = 0
    omitted_stacks: int = 0
    omitted_bytes: int = 0
    omitted_blocks: int = 0
    excluded: dict[str, OriginTotal] = field(default_factory=dict)

    @property
    def stacks(self) -> int:
        """How many leaking stacks the report lists."""
        return len(self.groups)


def leak_report(
    snapshot: HeapSnapshot, *, min_bytes: int = 0, exclude: Iterable[str] = NOISE_ORIGINS
) -> LeakReport:
    """What was allocated after start (``time_ns >= 0``) and is still live, grouped by stack.

    Stacks whose origin is in ``exclude`` (by default everything but the program's own code; pass
    ``()`` for every stack) are totalled per origin in ``excluded`` instead. Groups with fewer than
    ``min_bytes`` bytes are left out of ``groups`` and the totals (and counted in ``omitted_*``).
    Groups are sorted by bytes descending, then blocks descending, then first allocation time.
    """
    if isinstance(min_bytes, bool) or not isinstance(min_bytes, int) or min_bytes < 0:
        raise InvalidArgument(f"min_bytes must be a non-negative integer, got {min_bytes!r}")
    if not isinstance(snapshot, HeapSnapshot):
        raise InvalidArgument(f"leak_report needs a HeapSnapshot, got {type(snapshot).__name__}")
    if isinstance(exclude, str):
        raise InvalidArgument("exclude must be a collection of origins, not a string")
    excluded_origins = set(exclude)
    unknown = excluded_origins - set(ORIGINS)
    if unknown:
        raise InvalidArgument(f"unknown origins {sorted(unknown)}; origins are {', '.join(ORIGINS)}")
    live = snapshot.filter(since_ns=0)
    groups: dict[tuple[Frame, ...], list[float]] = {}
    if len(live):
        order = np.argsort(live.stack, kind="stable")
        stack = live.stack[order]
        starts = np.flatnonzero(np.r_[True, stack[1:] != stack[:-1]])
        byte_sums = np.add.reduceat(live.bytes[order], starts).tolist()
        count_sums = np.add.reduceat(live.count[order], starts).tolist()
        firsts = np.minimum.reduceat(live.time_ns[order], starts).tolist()
        lasts = np.maximum.reduceat(live.time_ns[order], starts).tolist()
        for i, stack_id in enumerate(stack[starts].tolist()):
            frames = live.stack_frames(stack_id)
            entry = groups.get(frames)
            if entry is None:
                groups[frames] = [byte_sums[i], count_sums[i], firsts[i], lasts[i]]
            else:
                entry[0] += byte_sums[i]
                entry[1] += count_sums[i]
                entry[2] = min(entry[2], firsts[i])
                entry[3] = max(entry[3], lasts[i])
    kept: list[LeakGroup] = []
    omitted = [0, 0, 0]
    left_out: dict[str, list[int]] = {}
    for frames, (nbytes, count, first, last) in groups.items():
        origin = leak_origin(frames)
        group = LeakGroup(frames, int(nbytes), round(count), int(first), int(last), origin)
        if origin in excluded_origins:
            totals = left_out.setdefault(origin, [0, 0, 0])
            totals[0] += group.bytes
            totals[1] += group.blocks
            totals[2] += 1
        elif group.bytes < min_bytes:
            omitted[0] += 1
            omitted[1] += group.bytes
            omitted[2] += group.blocks
        else:
            kept.append(group)
    kept.sort(key=lambda g: (-g.bytes, -g.blocks, g.first_alloc_ns))
    return LeakReport(
        total_bytes=sum(g.bytes for g in kept),
        total_blocks=sum(g.blocks for g in kept),
        groups=kept,
        mode=snapshot.meta.mode,
        sample_rate=snapshot.meta.sample_rate,
        omitted_stacks=omitted[0],
        omitted_bytes=omitted[1],
        omitted_blocks=omitted[2],
        excluded={o: OriginTotal(*left_out[o]) for o in ORIGINS if o in left_out},
    )
