"""HeapSnapshot: the blocks live at one moment, with the stacks that allocated them.

A snapshot holds a frames table, interned stacks (tuples of frame indices, root first) and one row
per live block (exact mode) or per live *sampled* block (sampled mode), in numpy columns:

- ``stack`` int32: index into ``stacks``;
- ``size`` int64: the block's real size in bytes (what the size classes use);
- ``bytes`` int64: the bytes the row stands for: ``size`` in exact mode, the unbiased estimate
  (the sampling weight) in sampled mode;
- ``count`` float64: the blocks the row stands for: 1.0 in exact mode, the estimate in sampled mode;
- ``tid`` int64: the native id of the allocating thread;
- ``time_ns`` int64: when the block was allocated, in nanoseconds since the tracking started.

Every analysis sums ``bytes`` and ``count``, so sampled snapshots give unbiased estimates and exact
ones exact numbers. :class:`HeapMeta` holds the recording's exact totals (allocated and freed bytes
and counts, peak, current), which are exact whatever the mode.

Grouping keys: ``"stack"`` (the whole stack, compared by frame content), ``"line"`` (the innermost
frame's file and line) and ``"file"`` (the innermost frame's file). Rows with an empty stack group
under ``<no Python frames>``. Percentages are of the snapshot's total bytes.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from aether_perf.errors import InvalidArgument
from aether_perf.model.frame import Frame
from aether_perf.model.memory_series import MemorySeries
from aether_perf.model.profile import _check_frames, _check_stacks

if TYPE_CHECKING:
    from aether_perf.analysis.lines import LineAlloc
    from aether_perf.fileio import PathOrText, StrPath

__all__ = [
    "HEAP_KEYS",
    "HEAP_MODES",
    "MEDIUM_MAX",
    "NO_FRAMES",
    "SMALL_MAX",
    "Growth",
    "HeapKey",
    "HeapMeta",
    "HeapSnapshot",
    "HeapSummary",
    "HotSpot",
    "load_heap",
]

#: ``exact``: every allocation is tracked; ``sampled``: Poisson byte sampling with unbiased weights.
HEAP_MODES = ("exact", "sampled")
#: The grouping keys of :meth:`HeapSnapshot.hot_spots` and :meth:`HeapSnapshot.compare_to`.
HEAP_KEYS = ("stack", "line", "file")
#: Size classes by a block's real size: small 0..SMALL_MAX, medium ..MEDIUM_MAX, large above.
SMALL_MAX = 64
MEDIUM_MAX = 1024
#: The location of rows whose stack has no Python frames.
NO_FRAMES = "<no Python frames>"

HeapKey: TypeAlias = Literal["stack", "line", "file"]
#: What one group is keyed by: a stack's frames (root first), ``(file, line)`` or a file name.
_GroupKey: TypeAlias = "tuple[Frame, ...] | tuple[str, int] | str"


@dataclass
class HeapMeta:
    """Metadata of a heap snapshot.

    ``sample_rate`` is the mean bytes between samples (0 in exact mode); ``start_time`` Unix epoch
    seconds; ``duration`` seconds from the start of tracking to the snapshot. The totals
    (``allocated_bytes`` ... ``current_bytes``) are exact counts in both modes. ``native`` says
    whether native (malloc/mmap) allocations were tracked too. ``extra`` must hold only JSON types
    to survive :meth:`HeapSnapshot.save`.
    """

    mode: str
    sample_rate: int
    start_time: float
    duration: float
    python_version: str
    native: bool
    allocated_bytes: int
    freed_bytes: int
    allocations: int
    frees: int
    peak_bytes: int
    current_bytes: int
    extra: dict[str, Any] = field(default_factory=dict)


_META_INTS = (
    "sample_rate",
    "allocated_bytes",
    "freed_bytes",
    "allocations",
    "frees",
    "peak_bytes",
    "current_bytes",
)


def _check_meta(meta: HeapMeta) -> None:
    if not isinstance(meta, HeapMeta):
        raise InvalidArgument(f"meta must be a HeapMeta, got {type(meta).__name__}")
    if meta.mode not in HEAP_MODES:
        raise InvalidArgument(f"meta.mode must be one of {', '.join(HEAP_MODES)}, got {meta.mode!r}")
    for name in _META_INTS:
        value = getattr(meta, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidArgument(f"meta.{name} must be a non-negative integer, got {value!r}")
    if meta.mode == "exact" and meta.sample_rate != 0:
        raise InvalidArgument(f"meta.sample_rate must be 0 in exact mode, got {meta.sample_rate}")
    if meta.mode == "sampled" and meta.sample_rate <= 0:
        raise InvalidArgument("meta.sample_rate must be positive in sampled mode")
    for name in ("start_time", "duration"):
        value = getattr(meta, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InvalidArgument(f"meta.{name} must be a finite number, got {value!r}")
    if meta.duration < 0:
        raise InvalidArgument("meta.duration must not be negative")
    if not isinstance(meta.python_version, str):
        raise InvalidArgument("meta.python_version must be a string")
    if not isinstance(meta.native, bool):
        raise InvalidArgument(f"meta.native must be a bool, got {meta.native!r}")
    if not isinstance(meta.extra, dict):
        raise InvalidArgument(f"meta.extra must be a dict, got {type(meta.extra).__name__}")


def _int_column(name: str, values: npt.ArrayLike, dtype: type[np.integer[Any]]) -> npt.NDArray[Any]:
    array = np.asarray(values)
    if array.ndim != 1:
        raise InvalidArgument(f"heap column {name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        return _frozen(np.zeros(0, dtype=dtype))
    if array.dtype.kind not in "iu":
        raise InvalidArgument(f"heap column {name} must hold integers, got {array.dtype}")
    info = np.iinfo(dtype)
    low, high = int(array.min()), int(array.max())
    if low < info.min or high > info.max:
        raise InvalidArgument(
            f"heap column {name} holds values {low}..{high}, outside {np.dtype(dtype).name}"
        )
    return _frozen(array.astype(dtype, copy=True))


def _float_column(name: str, values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    array = np.asarray(values)
    if array.ndim != 1:
        raise InvalidArgument(f"heap column {name} must be one-dimensional, got shape {array.shape}")
    if array.size and array.dtype.kind not in "iuf":
        raise InvalidArgument(f"heap column {name} must hold numbers, got {array.dtype}")
    result = array.astype(np.float64, copy=True)
    if result.size and not np.all(np.isfinite(result)):
        raise InvalidArgument(f"heap column {name} holds a NaN or infinite value")
    return _frozen(result)


def _frozen(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    array.flags.writeable = False
    return array


@dataclass(frozen=True)
class HeapSummary:
    """Live totals and size classes (by a block's real size: 0-64, 65-1024, larger).

    Bytes are sums of the ``bytes`` column; object counts are sums of the ``count`` column rounded
    to whole blocks (exact in exact mode, estimates in sampled mode).
    """

    total_bytes: int
    total_objects: int
    small_count: int
    small_bytes: int
    medium_count: int
    medium_bytes: int
    large_count: int
    large_bytes: int


@dataclass(frozen=True)
class HotSpot:
    """One group of live blocks.

    ``location`` is a one-line label; ``frames`` the stack root first for key ``"stack"`` (empty
    for the other keys); ``file`` and ``line`` the innermost frame's (``line`` is 0 for key
    ``"file"``; both empty/0 for rows with no Python frames).
    """

    location: str
    frames: tuple[Frame, ...]
    file: str
    line: int
    bytes: int
    count: int
    pct: float


@dataclass(frozen=True)
class Growth:
    """How one group changed from an older snapshot to a newer one (``delta = bytes_after - bytes_before``).

    Groups present in only one snapshot appear with 0 on the other side.
    """

    location: str
    frames: tuple[Frame, ...]
    file: str
    line: int
    bytes_before: int
    bytes_after: int
    delta: int
    count_before: int
    count_after: int
    count_delta: int

    @property
    def status(self) -> str:
        """``new``, ``freed``, ``grown``, ``shrunk`` or ``unchanged``."""
        if self.count_before == 0 and self.bytes_before == 0 and (self.bytes_after or self.count_after):
            return "new"
        if self.count_after == 0 and self.bytes_after == 0 and (self.bytes_before or self.count_before):
            return "freed"
        if self.delta > 0:
            return "grown"
        if self.delta < 0:
            return "shrunk"
        return "unchanged"


def frame_location(frame: Frame) -> str:
    """``function (file:line)``, or ``function`` for a frame without a file."""
    return f"{frame.function} ({frame.file}:{frame.line})" if frame.file else frame.function


def _check_key(key: str) -> None:
    if key not in HEAP_KEYS:
        raise InvalidArgument(f"key must be one of {', '.join(HEAP_KEYS)}, got {key!r}")


def _describe(group: _GroupKey, key: str) -> tuple[str, tuple[Frame, ...], str, int]:
    """(location, frames, file, line) of a group key."""
    if key == "stack":
        assert isinstance(group, tuple)
        frames = tuple(f for f in group if isinstance(f, Frame))
        if not frames:
            return NO_FRAMES, (), "", 0
        inner = frames[-1]
        return ";".join(frame_location(f) for f in frames), frames, inner.file, inner.line
    if key == "line":
        assert isinstance(group, tuple)
        file, line = group
        assert isinstance(file, str) and isinstance(line, int)
        if not file and not line:
            return NO_FRAMES, (), "", 0
        return f"{file}:{line}", (), file, line
    assert isinstance(group, str)
    return (group or NO_FRAMES), (), group, 0


class HeapSnapshot:
    """The live blocks at one moment (see the module doc for the columns).

    Raises :class:`InvalidArgument` when the parts do not fit: columns of different lengths or
    wrong types, a stack or frame index out of range, negative sizes/bytes/counts, exact-mode rows
    whose ``bytes`` differ from ``size`` or whose ``count`` is not 1, a malformed ``meta``.
    """

    frames: list[Frame]
    stacks: list[tuple[int, ...]]
    stack: npt.NDArray[np.int32]
    size: npt.NDArray[np.int64]
    bytes: npt.NDArray[np.int64]
    count: npt.NDArray[np.float64]
    tid: npt.NDArray[np.int64]
    time_ns: npt.NDArray[np.int64]
    meta: HeapMeta
    series: MemorySeries | None

    COLUMNS = ("stack", "size", "bytes", "count", "tid", "time_ns")

    def __init__(
        self,
        frames: Sequence[Frame],
        stacks: Sequence[tuple[int, ...]],
        *,
        stack: npt.ArrayLike,
        size: npt.ArrayLike,
        bytes: npt.ArrayLike,
        count: npt.ArrayLike,
        tid: npt.ArrayLike,
        time_ns: npt.ArrayLike,
        meta: HeapMeta,
        series: MemorySeries | None = None,
    ) -> None:
        _check_meta(meta)
        if series is not None and not isinstance(series, MemorySeries):
            raise InvalidArgument(f"series must be a MemorySeries or None, got {type(series).__name__}")
        #: Memory over time during the recording (None when it was not recorded).
        self.series = series
        self.frames = _check_frames(frames)
        self.stacks = _check_stacks(stacks, len(self.frames))
        self.stack = _int_column("stack", stack, np.int32)
        self.size = _int_column("size", size, np.int64)
        self.bytes = _int_column("bytes", bytes, np.int64)
        self.count = _float_column("count", count)
        self.tid = _int_column("tid", tid, np.int64)
        self.time_ns = _int_column("time_ns", time_ns, np.int64)
        lengths = {name: len(getattr(self, name)) for name in self.COLUMNS}
        if len(set(lengths.values())) != 1:
            shown = ", ".join(f"{name} {n}" for name, n in lengths.items())
            raise InvalidArgument(f"heap columns differ in length: {shown}")
        if len(self.stack) and (int(self.stack.min()) < 0 or int(self.stack.max()) >= len(self.stacks)):
            raise InvalidArgument(
                f"heap column stack holds {int(self.stack.min())}..{int(self.stack.max())}, "
                f"outside the {len(self.stacks)}-stack table"
            )
        for name in ("size", "bytes", "count"):
            column = getattr(self, name)
            if len(column) and column.min() < 0:
                raise InvalidArgument(f"heap column {name} holds a negative value")
        if meta.mode == "exact" and len(self.stack):
            if not np.array_equal(self.bytes, self.size):
                raise InvalidArgument("in exact mode every row's bytes must equal its size")
            if not np.all(self.count == 1.0):
                raise InvalidArgument("in exact mode every row's count must be 1")
        self.meta = meta

    # -- basic queries -----------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.stack.shape[0])

    def __repr__(self) -> str:
        return (
            f"<HeapSnapshot {self.meta.mode} {len(self)} rows, {self.total_bytes} bytes, "
            f"{len(self.stacks)} stacks, {len(self.frames)} frames>"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HeapSnapshot):
            return NotImplemented
        return (
            self.frames == other.frames
            and self.stacks == other.stacks
            and self.meta == other.meta
            and self.series == other.series
            and all(np.array_equal(getattr(self, n), getattr(other, n)) for n in self.COLUMNS)
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def total_bytes(self) -> int:
        """Live bytes: the sum of the ``bytes`` column (an estimate in sampled mode)."""
        return int(self.bytes.sum(dtype=np.int64))

    @property
    def total_count(self) -> float:
        """Live blocks: the sum of the ``count`` column (an estimate in sampled mode)."""
        return float(self.count.sum())

    def stack_frames(self, stack_id: int) -> tuple[Frame, ...]:
        """The frames of stack ``stack_id``, root first."""
        return tuple(self.frames[i] for i in self.stacks[stack_id])

    def summary(self) -> HeapSummary:
        """Live totals and the small (0-64 B), medium (65-1024 B) and large size classes."""
        small = self.size <= SMALL_MAX
        large = self.size > MEDIUM_MAX
        medium = ~small & ~large

        def part(mask: npt.NDArray[np.bool_]) -> tuple[int, int]:
            return round(float(self.count[mask].sum())), int(self.bytes[mask].sum(dtype=np.int64))

        (sc, sb), (mc, mb), (lc, lb) = part(small), part(medium), part(large)
        return HeapSummary(self.total_bytes, round(self.total_count), sc, sb, mc, mb, lc, lb)

    # -- grouping ----------------------------------------------------------------------------

    def _stack_sums(self) -> tuple[list[int], list[float]]:
        """Bytes and counts per stack id."""
        n = len(self.stacks)
        byte_sums = np.zeros(n, dtype=np.int64)
        np.add.at(byte_sums, self.stack, self.bytes)
        count_sums = np.bincount(self.stack, weights=self.count, minlength=n) if n else np.zeros(0)
        return byte_sums.tolist(), count_sums.tolist()

    def _group_key(self, stack_id: int, key: str) -> _GroupKey:
        stack = self.stacks[stack_id]
        if key == "stack":
            return tuple(self.frames[i] for i in stack)
        if not stack:
            return ("", 0) if key == "line" else ""
        inner = self.frames[stack[-1]]
        return (inner.file, inner.line) if key == "line" else inner.file

    def group(self, key: HeapKey = "stack") -> dict[_GroupKey, tuple[int, float]]:
        """``{group: (bytes, count)}`` over the live rows, grouped by ``key``."""
        _check_key(key)
        byte_sums, count_sums = self._stack_sums()
        present = np.unique(self.stack).tolist()
        result: dict[_GroupKey, tuple[int, float]] = {}
        for stack_id in present:
            group = self._group_key(stack_id, key)
            old_bytes, old_count = result.get(group, (0, 0.0))
            result[group] = (old_bytes + byte_sums[stack_id], old_count + count_sums[stack_id])
        return result

    def hot_spots(
        self, n: int | None = 10, *, by: Literal["bytes", "count"] = "bytes", key: HeapKey = "stack"
    ) -> list[HotSpot]:
        """The ``n`` biggest groups (all with ``n=None``) by live bytes or blocks, biggest first.

        Ties are broken by the other measure, then by location.
        """
        if by not in ("bytes", "count"):
            raise InvalidArgument(f"by must be 'bytes' or 'count', got {by!r}")
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
            raise InvalidArgument(f"n must be a non-negative integer or None, got {n!r}")
        whole = self.total_bytes
        spots = []
        for group, (nbytes, count) in self.group(key).items():
            location, frames, file, line = _describe(group, key)
            pct = 100.0 * nbytes / whole if whole else 0.0
            spots.append(HotSpot(location, frames, file, line, nbytes, round(count), pct))
        if by == "bytes":
            spots.sort(key=lambda s: (-s.bytes, -s.count, s.location))
        else:
            spots.sort(key=lambda s: (-s.count, -s.bytes, s.location))
        return spots if n is None else spots[:n]

    def compare_to(self, older: HeapSnapshot, *, key: HeapKey = "stack") -> list[Growth]:
        """Growth from ``older`` to this snapshot per group, by ``delta`` descending (then location).

        Groups are matched by content (frames, file and line), so the two snapshots need not share
        frame or stack tables. Groups live in only one of them appear with 0 on the other side.
        """
        if not isinstance(older, HeapSnapshot):
            raise InvalidArgument(f"compare_to needs a HeapSnapshot, got {type(older).__name__}")
        before = older.group(key)
        after = self.group(key)
        rows = []
        for group in {**before, **after}:
            b_bytes, b_count = before.get(group, (0, 0.0))
            a_bytes, a_count = after.get(group, (0, 0.0))
            location, frames, file, line = _describe(group, key)
            cb, ca = round(b_count), round(a_count)
            rows.append(
                Growth(location, frames, file, line, b_bytes, a_bytes, a_bytes - b_bytes, cb, ca, ca - cb)
            )
        rows.sort(key=lambda g: (-g.delta, -g.count_delta, g.location))
        return rows

    def line_allocations(self) -> dict[tuple[str, int], LineAlloc]:
        """Allocations per ``(file, line)``: since tracking started and still live (see
        :func:`aether_perf.analysis.lines.heap_lines`)."""
        from aether_perf.analysis.lines import heap_lines

        return heap_lines(self)

    # -- derived snapshots -------------------------------------------------------------------

    def filter(self, *, thread: int | None = None, since_ns: int | None = None) -> HeapSnapshot:
        """The rows allocated by one thread and/or at ``time_ns >= since_ns``.

        The frames and stacks tables and the meta (whose totals describe the whole recording) are
        kept; ``meta.extra`` is copied.
        """
        mask = np.ones(len(self), dtype=bool)
        if thread is not None:
            mask &= self.tid == thread
        if since_ns is not None:
            mask &= self.time_ns >= since_ns
        result = HeapSnapshot.__new__(HeapSnapshot)
        result.frames = list(self.frames)
        result.stacks = list(self.stacks)
        for name in self.COLUMNS:
            setattr(result, name, _frozen(getattr(self, name)[mask]))
        result.meta = dataclasses.replace(self.meta, extra=dict(self.meta.extra))
        result.series = self.series
        return result

    # -- files -------------------------------------------------------------------------------

    def save(self, path: StrPath) -> None:
        """Write the snapshot to ``path`` (aprof container, kind ``"heap"``), atomically."""
        from aether_perf.model.heap_codec import save_heap

        save_heap(self, path)

    @classmethod
    def load(cls, path: StrPath) -> HeapSnapshot:
        """Read a snapshot saved by :meth:`save`; raise ProfileFormatError if ``path`` is not one."""
        from aether_perf.model.heap_codec import load_heap as _load

        return _load(path)

    def to_flamegraph_html(self, path: PathOrText, *, title: str | None = None) -> None:
        """Write the self-contained HTML report: memory over time (when recorded) beside the
        flamegraph of live bytes by stack and the top stacks."""
        from aether_perf.report.html.heap_page import write_heap_html

        write_heap_html(self, path, title=title)

    def to_speedscope(self, path: PathOrText, *, name: str | None = None) -> None:
        """Write speedscope JSON: one sampled profile of live bytes by stack (unit ``bytes``)."""
        from aether_perf.model.heap_codec import write_speedscope

        write_speedscope(self, path, name=name)

    def to_collapsed(
        self, path: PathOrText, *, value: Literal["bytes", "count"] = "bytes", lines: bool = True
    ) -> None:
        """Write collapsed stacks: one line per stack, root first, with its live bytes (or blocks)."""
        from aether_perf.model.heap_codec import write_collapsed

        write_collapsed(self, path, value=value, lines=lines)


def load_heap(path: str | os.PathLike[str]) -> HeapSnapshot:
    """Read a heap snapshot saved by :meth:`HeapSnapshot.save`; ProfileFormatError if it is not one."""
    return HeapSnapshot.load(path)
