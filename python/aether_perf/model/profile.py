"""Profile: a frames table, interned stacks, per-sample columns and metadata.

The columns hold one row per sample: ``stack`` (int32 index into ``stacks``), ``tid`` (int64 native
thread id), ``time_ns`` (int64, since the profile start), ``weight_ns`` (int64: CPU or wall time
since the thread's previous sample) and ``flags`` (uint8, ``FLAG_*``). A stack is a tuple of frame
indices, root first. The columns are read-only copies; a Profile does not change once built.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from aether_perf.errors import InvalidArgument
from aether_perf.model.frame import FLAG_IDLE, Frame, ThreadInfo
from aether_perf.model.meta import PROFILE_MODES, ProfileMeta

if TYPE_CHECKING:
    from typing import BinaryIO

    from aether_perf.analysis.calltree import CallNode
    from aether_perf.analysis.lines import LineStat
    from aether_perf.analysis.top import FunctionStat
    from aether_perf.fileio import PathOrText, StrPath
    from aether_perf.push.pyroscope import PushResult

__all__ = ["MAIN_THREAD_NAME", "Profile", "load"]

#: The name ``threading`` gives the main thread; the thread with it is the profile's main thread.
MAIN_THREAD_NAME = "MainThread"


def _column(name: str, values: npt.ArrayLike, dtype: type[np.integer[Any]]) -> npt.NDArray[Any]:
    array = np.asarray(values)
    if array.ndim != 1:
        raise InvalidArgument(f"sample column {name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        result = np.zeros(0, dtype=dtype)
    else:
        if array.dtype.kind not in "iu":
            raise InvalidArgument(f"sample column {name} must hold integers, got {array.dtype}")
        info = np.iinfo(dtype)
        low, high = int(array.min()), int(array.max())
        if low < info.min or high > info.max:
            raise InvalidArgument(
                f"sample column {name} holds values {low}..{high}, outside {np.dtype(dtype).name}"
            )
        result = array.astype(dtype, copy=True)
    result.flags.writeable = False
    return result


def _check_meta(meta: ProfileMeta) -> None:
    if not isinstance(meta, ProfileMeta):
        raise InvalidArgument(f"meta must be a ProfileMeta, got {type(meta).__name__}")
    if meta.mode not in PROFILE_MODES:
        raise InvalidArgument(f"meta.mode must be one of {', '.join(PROFILE_MODES)}, got {meta.mode!r}")
    for field in ("interval", "start_time", "duration"):
        value = getattr(meta, field)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InvalidArgument(f"meta.{field} must be a finite number, got {value!r}")
    if meta.interval < 0 or meta.duration < 0:
        raise InvalidArgument("meta.interval and meta.duration must not be negative")
    for field in ("sample_count", "dropped"):
        value = getattr(meta, field)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidArgument(f"meta.{field} must be a non-negative integer, got {value!r}")
    if not isinstance(meta.python_version, str) or not isinstance(meta.program, str):
        raise InvalidArgument("meta.python_version and meta.program must be strings")
    if not isinstance(meta.extra, dict):
        raise InvalidArgument(f"meta.extra must be a dict, got {type(meta.extra).__name__}")


def _check_frames(frames: Sequence[Frame]) -> list[Frame]:
    result = list(frames)
    for index, frame in enumerate(result):
        if not isinstance(frame, Frame):
            raise InvalidArgument(f"frames[{index}] must be a Frame, got {type(frame).__name__}")
    return result


def _check_stacks(stacks: Iterable[Iterable[int]], frame_count: int) -> list[tuple[int, ...]]:
    result = [tuple(map(int, stack)) for stack in stacks]
    flat = np.fromiter(itertools.chain.from_iterable(result), dtype=np.int64)
    if flat.size and (int(flat.min()) < 0 or int(flat.max()) >= frame_count):
        bad = next(i for i, stack in enumerate(result) if any(not 0 <= f < frame_count for f in stack))
        raise InvalidArgument(
            f"stacks[{bad}] = {result[bad]} refers to a frame outside the {frame_count}-frame table"
        )
    return result


def _check_threads(
    threads: Mapping[int, ThreadInfo], sampled: npt.NDArray[np.int64]
) -> dict[int, ThreadInfo]:
    result: dict[int, ThreadInfo] = {}
    for tid, info in threads.items():
        if not isinstance(info, ThreadInfo):
            raise InvalidArgument(f"threads[{tid}] must be a ThreadInfo, got {type(info).__name__}")
        if int(tid) != info.tid:
            raise InvalidArgument(f"threads[{tid}] describes thread {info.tid}")
        result[int(tid)] = info
    for tid in np.unique(sampled).tolist():
        if tid not in result:
            result[tid] = ThreadInfo(tid, f"Thread {tid}")
    return result


class Profile:
    """A sampling profile (see the module doc for the columns).

    Raises :class:`InvalidArgument` when the parts do not fit together: columns of different
    lengths or non-integer values, a stack index outside ``stacks``, a frame index outside
    ``frames``, a malformed ``meta``. A thread id that appears in the samples but not in ``threads``
    gets ``ThreadInfo(tid, "Thread <tid>")``.
    """

    frames: list[Frame]
    stacks: list[tuple[int, ...]]
    threads: dict[int, ThreadInfo]
    stack: npt.NDArray[np.int32]
    tid: npt.NDArray[np.int64]
    time_ns: npt.NDArray[np.int64]
    weight_ns: npt.NDArray[np.int64]
    flags: npt.NDArray[np.uint8]
    meta: ProfileMeta

    def __init__(
        self,
        frames: Sequence[Frame],
        stacks: Sequence[tuple[int, ...]],
        threads: Mapping[int, ThreadInfo],
        *,
        stack: npt.ArrayLike,
        tid: npt.ArrayLike,
        time_ns: npt.ArrayLike,
        weight_ns: npt.ArrayLike,
        flags: npt.ArrayLike,
        meta: ProfileMeta,
    ) -> None:
        _check_meta(meta)
        self.frames = _check_frames(frames)
        self.stacks = _check_stacks(stacks, len(self.frames))
        self.stack = _column("stack", stack, np.int32)
        self.tid = _column("tid", tid, np.int64)
        self.time_ns = _column("time_ns", time_ns, np.int64)
        self.weight_ns = _column("weight_ns", weight_ns, np.int64)
        self.flags = _column("flags", flags, np.uint8)
        lengths = {len(c) for c in (self.stack, self.tid, self.time_ns, self.weight_ns, self.flags)}
        if len(lengths) != 1:
            raise InvalidArgument(
                "sample columns differ in length: "
                f"stack {len(self.stack)}, tid {len(self.tid)}, time_ns {len(self.time_ns)}, "
                f"weight_ns {len(self.weight_ns)}, flags {len(self.flags)}"
            )
        if len(self.stack) and (int(self.stack.min()) < 0 or int(self.stack.max()) >= len(self.stacks)):
            raise InvalidArgument(
                f"sample column stack holds {int(self.stack.min())}..{int(self.stack.max())}, "
                f"outside the {len(self.stacks)}-stack table"
            )
        if len(self.weight_ns) and int(self.weight_ns.min()) < 0:
            raise InvalidArgument("sample column weight_ns holds a negative weight")
        self.threads = _check_threads(threads, self.tid)
        self.meta = meta

    # -- basic queries -----------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self.stack.shape[0])

    def __repr__(self) -> str:
        return (
            f"<Profile {self.meta.mode} {len(self)} samples, {len(self.threads)} threads, "
            f"{len(self.stacks)} stacks, {len(self.frames)} frames, {self.meta.duration:g}s>"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Profile):
            return NotImplemented
        return (
            self.frames == other.frames
            and self.stacks == other.stacks
            and self.threads == other.threads
            and self.meta == other.meta
            and all(
                np.array_equal(getattr(self, name), getattr(other, name))
                for name in ("stack", "tid", "time_ns", "weight_ns", "flags")
            )
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def total_weight_ns(self) -> int:
        """The summed weight of all samples, in nanoseconds."""
        return int(self.weight_ns.sum(dtype=np.int64))

    def thread_ids(self) -> list[int]:
        """The ids of the profile's threads, ascending."""
        return sorted(self.threads)

    def main_thread_id(self) -> int | None:
        """The main thread: the one named ``MainThread``, else the one whose tid is ``meta.extra["pid"]``."""
        for tid in sorted(self.threads):
            if self.threads[tid].name == MAIN_THREAD_NAME:
                return tid
        pid = self.meta.extra.get("pid")
        if isinstance(pid, int) and pid in self.threads:
            return pid
        return None

    # -- derived profiles --------------------------------------------------------------------

    def filter(
        self,
        *,
        thread: int | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
        include_idle: bool = True,
    ) -> Profile:
        """The samples of one thread and/or a time window ``start_ns <= time_ns < end_ns``.

        ``include_idle=False`` drops samples flagged ``FLAG_IDLE``. With a thread, only that thread
        stays in ``threads``. With ``start_ns`` the result is rebased: its ``time_ns`` count from
        ``start_ns`` and ``meta.start_time`` moves by as much; with either bound ``meta.duration``
        becomes the window's overlap with the profile. ``meta.sample_count`` is the kept count; the
        frames and stacks tables are shared unchanged.
        """
        mask = np.ones(len(self), dtype=bool)
        threads = dict(self.threads)
        if thread is not None:
            if thread not in self.threads:
                raise InvalidArgument(f"thread {thread} is not in the profile (threads: {_tids(self)})")
            mask &= self.tid == thread
            threads = {thread: self.threads[thread]}
        if start_ns is not None and end_ns is not None and start_ns > end_ns:
            raise InvalidArgument(f"time window start {start_ns} ns is after its end {end_ns} ns")
        if start_ns is not None:
            mask &= self.time_ns >= start_ns
        if end_ns is not None:
            mask &= self.time_ns < end_ns
        if not include_idle:
            mask &= (self.flags & FLAG_IDLE) == 0
        meta = dataclasses.replace(self.meta, sample_count=int(mask.sum()), extra=dict(self.meta.extra))
        time_ns = self.time_ns[mask]
        if start_ns is not None or end_ns is not None:
            duration_ns = round(self.meta.duration * 1e9)
            low = max(start_ns if start_ns is not None else 0, 0)
            high = min(end_ns if end_ns is not None else duration_ns, duration_ns)
            meta.duration = max(high - low, 0) / 1e9
        if start_ns is not None:
            time_ns = time_ns - start_ns
            meta.start_time = self.meta.start_time + start_ns / 1e9
        result = Profile.__new__(Profile)
        result.frames = list(self.frames)
        result.stacks = list(self.stacks)
        result.threads = threads
        result.stack = _frozen(self.stack[mask])
        result.tid = _frozen(self.tid[mask])
        result.time_ns = _frozen(time_ns)
        result.weight_ns = _frozen(self.weight_ns[mask])
        result.flags = _frozen(self.flags[mask])
        result.meta = meta
        return result

    # -- files -------------------------------------------------------------------------------

    def save(self, path: StrPath) -> None:
        """Write the profile to ``path`` in the aprof format, atomically."""
        from aether_perf.model.profile_codec import save_profile

        save_profile(self, path)

    @classmethod
    def load(cls, path: StrPath) -> Profile:
        """Read a profile saved by :meth:`save`; raise ProfileFormatError if ``path`` is not one."""
        from aether_perf.model.profile_codec import load_profile

        return load_profile(path)

    def to_speedscope(self, path: PathOrText, *, name: str | None = None) -> None:
        """Write a speedscope JSON file (see :mod:`aether_perf.export.speedscope`)."""
        from aether_perf.export import speedscope

        speedscope.write(self, path, name=name)

    def to_collapsed(self, path: PathOrText, **kwargs: Any) -> None:
        """Write collapsed stacks (see :func:`aether_perf.export.collapsed.write` for the options)."""
        from aether_perf.export import collapsed

        collapsed.write(self, path, **kwargs)

    def to_pprof(self, path: StrPath | BinaryIO, *, thread: int | None = None) -> None:
        """Write a gzipped pprof profile.proto (see :mod:`aether_perf.export.pprof`)."""
        from aether_perf.export import pprof

        pprof.write(self, path, thread=thread)

    def to_html(self, path: PathOrText, **kwargs: Any) -> None:
        """Write the interactive HTML report (see :func:`aether_perf.report.html.write_html`)."""
        from aether_perf.report.html import write_html

        write_html(self, path, **kwargs)

    def push(
        self, url: str, *, app_name: str, labels: Mapping[str, object] | None = None, **kwargs: Any
    ) -> PushResult:
        """Upload to a Grafana Pyroscope server (options: :func:`aether_perf.push.pyroscope.push`)."""
        from aether_perf.push.pyroscope import push

        return push(self, url, app_name=app_name, labels=labels, **kwargs)

    # -- analyses ----------------------------------------------------------------------------

    def top_functions(self, n: int | None = 20, **kwargs: Any) -> list[FunctionStat]:
        """The ``n`` heaviest functions (see :func:`aether_perf.analysis.top.top_functions`)."""
        from aether_perf.analysis.top import top_functions

        return top_functions(self, n, **kwargs)

    def call_tree(self, **kwargs: Any) -> CallNode:
        """The call tree (see :func:`aether_perf.analysis.calltree.call_tree`)."""
        from aether_perf.analysis.calltree import call_tree

        return call_tree(self, **kwargs)

    def line_stats(self, *, thread: int | None = None) -> dict[tuple[str, int], LineStat]:
        """Time per ``(file, line)`` (see :func:`aether_perf.analysis.lines.line_stats`)."""
        from aether_perf.analysis.lines import line_stats

        return line_stats(self, thread=thread)


def _frozen(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    array.flags.writeable = False
    return array


def _tids(profile: Profile) -> str:
    tids = profile.thread_ids()
    shown = ", ".join(str(t) for t in tids[:10])
    return shown + (f", ... ({len(tids)} in all)" if len(tids) > 10 else "") if tids else "none"


def load(path: str | os.PathLike[str]) -> Profile:
    """Read a profile saved by :meth:`Profile.save`; raise ProfileFormatError if ``path`` is not one."""
    return Profile.load(path)
