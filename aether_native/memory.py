"""AllocationTracker: the public allocation-tracking API over the C core (csrc/alloc.c).

    with AllocationTracker(mode="exact") as t:        # or mode="sampled", sample_rate="512KiB"
        run()
    snap = t.snapshot()        # the blocks live at stop: an aether_perf HeapSnapshot
    stats = t.statistics()     # exact totals: allocated/freed bytes and blocks, current, peak

The tracker hooks the RAW, MEM and OBJ allocator domains (PyMem_SetAllocator). Exact mode records
every block allocated after ``start()`` with its Python stack; sampled mode records the size of
every block (so the totals stay exact) but a stack only for blocks hit by Poisson byte sampling
(mean ``sample_rate`` bytes), weighted by ``1 / (1 - exp(-size / rate))`` so sums are unbiased.
Only one tracker may run at a time; it can run alongside a :class:`~aether_native.Sampler`.
"""

from __future__ import annotations

import errno
import platform
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aether_perf.errors import InvalidArgument, SamplerBusyError, SamplerStateError
from aether_perf.units import parse_size

from aether_native import _core

if TYPE_CHECKING:
    from aether_perf.model.heap import HeapSnapshot

__all__ = ["DEFAULT_SAMPLE_RATE", "MODES", "AllocationTracker"]

MODES = ("exact", "sampled")
#: Go's MemProfileRate: about 2k live samples per GiB, ~10% error on a 50 MiB site.
DEFAULT_SAMPLE_RATE = 512 * 1024
#: Frames kept per allocation stack (the innermost ones).
DEFAULT_MAX_DEPTH = 128

_lock = threading.Lock()
_active: AllocationTracker | None = None


class AllocationTracker:
    """Track the Python allocator domains between :meth:`start` and :meth:`stop`.

    Raises :class:`InvalidArgument` for an unknown mode or an unparsable/out-of-range sample rate,
    :class:`SamplerBusyError` when another tracker is running, :class:`SamplerStateError` for
    calls out of order (snapshot before start, stop when not running)."""

    def __init__(
        self,
        mode: str = "exact",
        sample_rate: str | int = DEFAULT_SAMPLE_RATE,
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        if mode not in MODES:
            raise InvalidArgument(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        rate = parse_size(sample_rate, name="sample_rate", minimum=1)
        if (
            isinstance(max_depth, bool)
            or not isinstance(max_depth, int)
            or not 1 <= max_depth <= _core.ALLOC_MAX_DEPTH
        ):
            raise InvalidArgument(
                f"max_depth must be an integer in 1..{_core.ALLOC_MAX_DEPTH}, got {max_depth!r}"
            )
        self.mode = mode
        self.sample_rate = rate if mode == "sampled" else 0
        self.max_depth = max_depth
        self._session: _core.HeapSession | None = None
        self._start_time = 0.0

    @property
    def running(self) -> bool:
        return self._session is not None and bool(self._session.running)

    def start(self) -> AllocationTracker:
        global _active
        with _lock:
            if _active is not None or _core.alloc_running():
                raise SamplerBusyError("another AllocationTracker is already running in this process")
            session = _core.HeapSession()
            code = _core.ALLOC_EXACT if self.mode == "exact" else _core.ALLOC_SAMPLED
            try:
                session.start(code, self.sample_rate, self.max_depth)
            except OSError as exc:
                if exc.errno == errno.EBUSY:
                    raise SamplerBusyError(
                        "another AllocationTracker is already running in this process"
                    ) from None
                raise
            self._session = session
            self._start_time = time.time()
            _active = self
        return self

    def stop(self) -> AllocationTracker:
        """Stop tracking; snapshot() and statistics() then describe the state at this moment."""
        global _active
        with _lock:
            if self._session is None or not self._session.running:
                raise SamplerStateError("stop() called on an AllocationTracker that is not running")
            self._session.stop()
            _active = None
        return self

    def __enter__(self) -> AllocationTracker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.running:
            self.stop()

    def _require_session(self, what: str) -> _core.HeapSession:
        if self._session is None:
            raise SamplerStateError(f"{what}() called before start()")
        return self._session

    def statistics(self) -> dict[str, int]:
        """Exact totals since start (in both modes): ``allocated_bytes``, ``allocations``,
        ``freed_bytes``, ``frees`` (frees of blocks allocated since start), ``current_bytes``,
        ``peak_bytes``, ``live_blocks``, plus diagnostic counters (``sampled_allocations``,
        ``stacks``, ``unattributed``, ``untracked``, ``foreign_frees``)."""
        stats = self._require_session("statistics").stats()
        stats.pop("start_ns", None)
        stats.pop("stop_ns", None)
        return stats

    def raw_snapshot(self) -> tuple[list[tuple[str, str, int, int]], list[tuple[int, ...]], dict[str, Any]]:
        """The recording layer's output: (frames, stacks, numpy columns stack/size/bytes/count/
        tid/time_ns), without building a HeapSnapshot."""
        import numpy as np

        session = self._require_session("snapshot")
        frames, stacks, raw = session.live()
        size = np.frombuffer(raw["size"], dtype="<i8")
        if self.mode == "exact":
            weight = np.ones(len(size), dtype=np.float64)
            nbytes = size.copy()
        else:
            # P(a block of s bytes holds a sample point) = 1 - exp(-s/R); its inverse unbiases.
            weight = 1.0 / -np.expm1(-size.astype(np.float64) / self.sample_rate)
            nbytes = np.rint(size * weight).astype(np.int64)
        columns = {
            "stack": np.frombuffer(raw["stack"], dtype="<i4").astype(np.int32),
            "size": size.astype(np.int64),
            "bytes": nbytes,
            "count": weight,
            "tid": np.frombuffer(raw["tid"], dtype="<i8").astype(np.int64),
            "time_ns": np.frombuffer(raw["time_ns"], dtype="<i8").astype(np.int64),
        }
        return frames, stacks, columns

    def sites(self) -> list[dict[str, Any]]:
        """What each source line allocated since start, freed or not (the live snapshot forgets
        what was freed): one dict per innermost frame ``file``, ``line``, ``function`` with
        ``allocations`` and ``bytes`` (exact counts in exact mode, unbiased estimates in sampled
        mode), ``growths`` (reallocs that grew a block: a list or bytes object resized again and
        again) and ``samples`` (blocks recorded with a stack). Biggest ``bytes`` first."""
        frames, stacks, rows = self._require_session("sites").sites()
        merged: dict[tuple[str, int, str], list[float]] = {}
        for stack_index, hits, count, nbytes, growths in rows:
            stack = stacks[stack_index]
            qualname, file, line, _first = frames[stack[-1]] if stack else ("", "", 0, 0)
            total = merged.setdefault((file, line, qualname), [0, 0.0, 0.0, 0.0])
            total[0] += hits
            total[1] += count
            total[2] += nbytes
            total[3] += growths
        result: list[dict[str, Any]] = [
            {
                "file": file,
                "line": line,
                "function": function,
                "allocations": round(t[1]),
                "bytes": round(t[2]),
                "growths": round(t[3]),
                "samples": int(t[0]),
            }
            for (file, line, function), t in merged.items()
        ]
        result.sort(key=lambda row: (-row["bytes"], row["file"], row["line"]))
        return result

    def snapshot(self) -> HeapSnapshot:
        """The live blocks now (while running) or at stop (after): an aether_perf HeapSnapshot."""
        from aether_perf.model.frame import Frame
        from aether_perf.model.heap import HeapMeta, HeapSnapshot

        frames, stacks, columns = self.raw_snapshot()
        stats = self._require_session("snapshot").stats()
        end_ns = stats["stop_ns"] or _core.clock_ns()
        meta = HeapMeta(
            mode=self.mode,
            sample_rate=self.sample_rate,
            start_time=self._start_time,
            duration=max(0, end_ns - stats["start_ns"]) / 1e9,
            python_version=platform.python_version(),
            native=False,
            allocated_bytes=stats["allocated_bytes"],
            freed_bytes=stats["freed_bytes"],
            allocations=stats["allocations"],
            frees=stats["frees"],
            peak_bytes=stats["peak_bytes"],
            current_bytes=stats["current_bytes"],
            extra={
                k: stats[k]
                for k in (
                    "live_blocks",
                    "sampled_allocations",
                    "stacks",
                    "unattributed",
                    "untracked",
                    "foreign_frees",
                )
            },
        )
        # Per-line allocation totals (freed blocks included) for annotate and diagnose.
        meta.extra["sites"] = self.sites()
        return HeapSnapshot(
            [Frame(function=q, file=f, line=line, first_line=first) for q, f, line, first in frames],
            stacks,
            meta=meta,
            **columns,
        )
