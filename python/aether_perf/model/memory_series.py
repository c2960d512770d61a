"""MemorySeries: the process's memory over time, recorded beside a heap snapshot.

While an allocation tracker runs, a background thread reads every ``interval_ns`` (10 ms by
default) two numbers: the tracked heap (``heap_bytes``: bytes allocated minus freed since tracking
started, exact, as in :class:`~aether_perf.model.heap.HeapMeta`'s ``current_bytes``) and the
process's resident set size (``rss_bytes``, from ``/proc/self/statm``; 0 where it could not be
read, with ``has_rss`` False). ``time_ns`` is nanoseconds since tracking started, on the same clock
as a heap snapshot's ``time_ns`` column, so the series and the snapshot's blocks share one timeline.

The tracked heap counts only the Python allocator domains (and native allocations when tracked);
RSS also holds the interpreter, its arenas and everything else mapped, so the two differ by a
roughly constant offset and by pymalloc arenas kept after their blocks are freed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from aether_perf.errors import InvalidArgument

__all__ = ["DEFAULT_SERIES_INTERVAL_NS", "MemorySeries", "SeriesPeak"]

#: The default time between two points: 10 ms, as memray records RSS.
DEFAULT_SERIES_INTERVAL_NS = 10_000_000


@dataclass(frozen=True)
class SeriesPeak:
    """The highest value of one column and when (ns since tracking started) it was first reached."""

    bytes: int
    time_ns: int


def _column(name: str, values: npt.ArrayLike) -> npt.NDArray[np.int64]:
    array = np.asarray(values)
    if array.ndim != 1:
        raise InvalidArgument(f"series column {name} must be one-dimensional, got shape {array.shape}")
    if array.size and array.dtype.kind not in "iu":
        raise InvalidArgument(f"series column {name} must hold integers, got {array.dtype}")
    result = array.astype(np.int64, copy=True)
    if result.size and int(result.min()) < 0:
        raise InvalidArgument(f"series column {name} holds a negative value")
    result.flags.writeable = False
    return result


class MemorySeries:
    """Points ``(time_ns[i], heap_bytes[i], rss_bytes[i])`` in time order (see the module doc).

    Raises :class:`InvalidArgument` for columns of different lengths, negative values, times out
    of order or a non-positive ``interval_ns``.
    """

    COLUMNS = ("time_ns", "heap_bytes", "rss_bytes")

    time_ns: npt.NDArray[np.int64]
    heap_bytes: npt.NDArray[np.int64]
    rss_bytes: npt.NDArray[np.int64]

    def __init__(
        self,
        *,
        interval_ns: int,
        time_ns: npt.ArrayLike,
        heap_bytes: npt.ArrayLike,
        rss_bytes: npt.ArrayLike,
        has_rss: bool = True,
    ) -> None:
        if isinstance(interval_ns, bool) or not isinstance(interval_ns, int) or interval_ns <= 0:
            raise InvalidArgument(f"interval_ns must be a positive integer, got {interval_ns!r}")
        if not isinstance(has_rss, bool):
            raise InvalidArgument(f"has_rss must be a bool, got {has_rss!r}")
        self.interval_ns = interval_ns
        self.has_rss = has_rss
        self.time_ns = _column("time_ns", time_ns)
        self.heap_bytes = _column("heap_bytes", heap_bytes)
        self.rss_bytes = _column("rss_bytes", rss_bytes)
        lengths = {len(self.time_ns), len(self.heap_bytes), len(self.rss_bytes)}
        if len(lengths) != 1:
            raise InvalidArgument("series columns differ in length")
        if len(self.time_ns) > 1 and bool(np.any(np.diff(self.time_ns) < 0)):
            raise InvalidArgument("series times must not decrease")

    def __len__(self) -> int:
        return int(self.time_ns.shape[0])

    def __repr__(self) -> str:
        return f"<MemorySeries {len(self)} points every {self.interval_ns / 1e6:g} ms>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MemorySeries):
            return NotImplemented
        return (
            self.interval_ns == other.interval_ns
            and self.has_rss == other.has_rss
            and all(np.array_equal(getattr(self, n), getattr(other, n)) for n in self.COLUMNS)
        )

    __hash__ = None  # type: ignore[assignment]

    def _peak(self, column: npt.NDArray[np.int64]) -> SeriesPeak | None:
        if not len(column):
            return None
        i = int(np.argmax(column))
        return SeriesPeak(int(column[i]), int(self.time_ns[i]))

    def heap_peak(self) -> SeriesPeak | None:
        """The highest tracked heap among the points (None for an empty series)."""
        return self._peak(self.heap_bytes)

    def rss_peak(self) -> SeriesPeak | None:
        """The highest RSS among the points (None for an empty series or without RSS)."""
        return self._peak(self.rss_bytes) if self.has_rss else None

    def header(self) -> dict[str, Any]:
        """The JSON part of the series in a file (the columns are stored beside it)."""
        return {"interval_ns": self.interval_ns, "has_rss": self.has_rss}
