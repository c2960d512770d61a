"""pprof: the gzipped ``perftools.profiles.Profile`` protobuf of google/pprof's ``profile.proto``.

The file opens in ``go tool pprof``, Grafana Pyroscope, Parca and speedscope. What :func:`write`
puts in it (the messages are those of ``proto/profile.proto`` beside this module, a subset of
pprof's with pprof's field numbers):

- ``sample_type`` ``[samples/count, cpu/nanoseconds]`` for a cpu-mode profile and
  ``[samples/count, wall/nanoseconds]`` for a wall-mode one, and ``default_sample_type`` ``cpu``
  (``wall``). That is the order and the names of Go's own CPU profiles: by pprof's convention the
  count comes first, and tools that look for a ``cpu`` sample type (Pyroscope names the series
  ``process_cpu``) treat ours like Go's.
- One ``Sample`` per distinct (stack, thread), in stack-id then thread-id order, with values
  ``[number of samples, summed weight_ns]``, ``location_id`` leaf first (a sample with no Python
  frames has none), a numeric label ``thread_id`` (the native thread id) and a string label
  ``thread_name``.
- One ``Function`` per distinct ``(function, file, first_line)`` of the sampled frames: ``name``
  is the qualname, ``system_name`` is ``file:qualname`` (it always differs from ``name`` so that pprof's
  C++ demangling heuristics leave names such as ``<module>`` alone), ``filename``,
  ``start_line`` = ``first_line``. One ``Location`` per distinct (function, line) with a single
  ``Line(function_id, line)``. Ids count from 1 in the order of the profile's frames table; no
  ``Mapping`` (there is no binary), so ``mapping_id`` and ``address`` stay 0.
- ``string_table`` with ``""`` at index 0 then every string in first-use order; strings that are
  not valid UTF-8 (lone surrogates from undecodable file names) are written with ``\\udcXX``
  escapes.
- ``time_nanos`` (start, Unix epoch ns), ``duration_nanos``, ``period_type`` ``cpu/nanoseconds``
  (``wall/nanoseconds``) and ``period`` = the sampling interval in ns; ``drop_frames`` and
  ``keep_frames`` unset; ``comment`` holds ``key=value`` lines (generator, python_version, program,
  sample_count, dropped) that :func:`read` uses to restore the metadata.

The output is deterministic: the same Profile gives the same bytes (the gzip header carries no
time or name). Per-sample timestamps and flags are not kept, as pprof aggregates samples.

:func:`read` parses any pprof profile (gzipped or not) whose sample types include a time in
ns/us/ms/s, and gives a Profile with one sample row per pprof ``Sample`` (its weight in ns, time
0); reading what :func:`write` wrote gives back the same frames and the same weight per stack
and thread. It raises :class:`~aether_perf.errors.ProfileFormatError` with a one-line message for
anything else.

``go tool pprof`` note: pprof's demangler strips ``<...>`` from function names whose
``system_name`` equals their ``name``; ours differ, so ``<module>`` and ``<lambda>`` show as is.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import math
import os
import zlib
from collections.abc import Iterable
from typing import BinaryIO, TypeAlias

import numpy as np

from aether_perf.errors import InvalidArgument
from aether_perf.fileio import atomic_write_bytes
from aether_perf.model.fileformat import format_error
from aether_perf.model.frame import Frame, FunctionKey, ThreadInfo
from aether_perf.model.meta import ProfileMeta
from aether_perf.model.profile import Profile

try:
    from google.protobuf.message import DecodeError

    from aether_perf.export.proto import profile_pb2
except ImportError as _exc:  # pragma: no cover - protobuf is a dependency
    raise ImportError(
        f"pprof support needs the 'protobuf' package (pip install 'protobuf>=4.21.6,<8'): {_exc}"
    ) from _exc

__all__ = ["GZIP_MAGIC", "PathOrBinary", "from_bytes", "read", "to_bytes", "to_message", "write"]

#: A path to write/read, or a binary file already open (used as is and not closed).
PathOrBinary: TypeAlias = "str | os.PathLike[str] | BinaryIO"

GZIP_MAGIC = b"\x1f\x8b"
_TIME_UNITS_NS = {
    "nanoseconds": 1,
    "microseconds": 1_000,
    "milliseconds": 1_000_000,
    "seconds": 1_000_000_000,
}
_THREAD_ID = "thread_id"
_THREAD_NAME = "thread_name"
_GENERATOR = "generator"


def _exporter_id() -> str:
    try:
        return f"aether-native@{importlib.metadata.version('aether-native')}"
    except importlib.metadata.PackageNotFoundError:
        return "aether-native"


def _utf8(text: str) -> str:
    """``text`` if it encodes as UTF-8, else with lone surrogates as ``\\udcXX`` escapes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


class _Strings:
    """The string table: ``""`` at 0, then each string once, in first-use order."""

    def __init__(self) -> None:
        self.table: list[str] = [""]
        self._index: dict[str, int] = {"": 0}

    def __call__(self, text: str) -> int:
        text = _utf8(text)
        index = self._index.get(text)
        if index is None:
            index = len(self.table)
            self.table.append(text)
            self._index[text] = index
        return index


def _ns(seconds: float) -> int:
    """Seconds to whole nanoseconds without float rounding of large values (Unix times)."""
    whole = math.floor(seconds)
    return whole * 1_000_000_000 + round((seconds - whole) * 1e9)


def _groups(profile: Profile) -> tuple[list[int], list[int], list[int], list[int]]:
    """Per distinct (stack, tid), sorted by stack then tid: stack ids, tids, sample counts, weights."""
    n = len(profile)
    if n == 0:
        return [], [], [], []
    order = np.lexsort((profile.tid, profile.stack))
    stack = profile.stack[order]
    tid = profile.tid[order]
    weight = profile.weight_ns[order]
    starts_mask = np.ones(n, dtype=bool)
    starts_mask[1:] = (stack[1:] != stack[:-1]) | (tid[1:] != tid[:-1])
    starts = np.flatnonzero(starts_mask)
    weights = np.add.reduceat(weight, starts)
    counts = np.diff(np.append(starts, n))
    return stack[starts].tolist(), tid[starts].tolist(), counts.tolist(), weights.tolist()


def to_message(profile: Profile, *, thread: int | None = None) -> profile_pb2.Profile:
    """The (uncompressed) pprof message for ``profile``, or for one ``thread`` of it."""
    if thread is not None:
        profile = profile.filter(thread=thread)
    meta = profile.meta
    kind = "wall" if meta.mode == "wall" else "cpu"
    strings = _Strings()
    message = profile_pb2.Profile()
    message.sample_type.add(type=strings("samples"), unit=strings("count"))
    message.sample_type.add(type=strings(kind), unit=strings("nanoseconds"))
    message.default_sample_type = strings(kind)
    message.period_type.type = strings(kind)
    message.period_type.unit = strings("nanoseconds")
    message.period = _ns(meta.interval)
    message.time_nanos = _ns(meta.start_time)
    message.duration_nanos = _ns(meta.duration)

    stacks, tids, counts, weights = _groups(profile)
    used = sorted({frame for stack_id in set(stacks) for frame in profile.stacks[stack_id]})
    function_ids: dict[FunctionKey, int] = {}
    location_ids: dict[tuple[FunctionKey, int], int] = {}
    location_of_frame: dict[int, int] = {}
    for index in used:
        frame = profile.frames[index]
        key = frame.function_key
        function_id = function_ids.get(key)
        if function_id is None:
            function_id = function_ids[key] = len(function_ids) + 1
            system_name = f"{frame.file}:{frame.function}"
            message.function.add(
                id=function_id,
                name=strings(frame.function),
                system_name=strings(system_name),
                filename=strings(frame.file),
                start_line=frame.first_line,
            )
        location_key = (key, frame.line)
        location_id = location_ids.get(location_key)
        if location_id is None:
            location_id = location_ids[location_key] = len(location_ids) + 1
            location = message.location.add(id=location_id)
            location.line.add(function_id=function_id, line=frame.line)
        location_of_frame[index] = location_id

    thread_id_key = strings(_THREAD_ID)
    thread_name_key = strings(_THREAD_NAME)
    thread_names: dict[int, int] = {}
    for tid in sorted(set(tids)):
        info = profile.threads.get(tid)
        thread_names[tid] = strings(info.name if info else f"Thread {tid}")
    leaf_first: dict[int, list[int]] = {}
    for stack_id in stacks:
        if stack_id not in leaf_first:
            leaf_first[stack_id] = [location_of_frame[f] for f in reversed(profile.stacks[stack_id])]
    add = message.sample.add
    for stack_id, tid, count, weight in zip(stacks, tids, counts, weights, strict=True):
        sample = add(location_id=leaf_first[stack_id], value=(count, weight))
        sample.label.add(key=thread_id_key, num=tid)
        sample.label.add(key=thread_name_key, str=thread_names[tid])

    comments = [
        f"{_GENERATOR}={_exporter_id()}",
        f"python_version={meta.python_version}",
        f"program={meta.program}",
        f"sample_count={meta.sample_count}",
        f"dropped={meta.dropped}",
    ]
    message.comment.extend(strings(comment) for comment in comments)
    message.string_table.extend(strings.table)
    return message


def to_bytes(profile: Profile, *, thread: int | None = None) -> bytes:
    """The gzipped pprof bytes of ``profile`` (or of one ``thread``); see the module doc."""
    raw = to_message(profile, thread=thread).SerializeToString(deterministic=True)
    return gzip.compress(raw, compresslevel=6, mtime=0)


def write(profile: Profile, file: PathOrBinary, *, thread: int | None = None) -> None:
    """Write the gzipped pprof of ``profile`` (or of one ``thread``) to a path, atomically, or to
    an open binary file. An unknown ``thread`` raises InvalidArgument before anything is written."""
    data = to_bytes(profile, thread=thread)
    if isinstance(file, (str, os.PathLike)):
        with atomic_write_bytes(file) as handle:
            handle.write(data)
    else:
        file.write(data)


# -- reading -------------------------------------------------------------------------------------


def _describe(file: PathOrBinary) -> str:
    if isinstance(file, (str, os.PathLike)):
        return os.fspath(file)
    return str(getattr(file, "name", "<stream>"))


def read(file: PathOrBinary) -> Profile:
    """Read a pprof profile (gzipped or not) from a path or an open binary file (see the module doc)."""
    label = _describe(file)
    try:
        if isinstance(file, (str, os.PathLike)):
            with open(file, "rb") as handle:
                data = handle.read()
        else:
            data = file.read()
    except FileNotFoundError:
        raise format_error(label, "no such file") from None
    except OSError as exc:
        raise format_error(label, f"cannot read it: {exc}") from None
    return from_bytes(data, source=label)


def from_bytes(data: bytes, *, source: str = "<bytes>") -> Profile:
    """The Profile in pprof ``data`` (gzipped or not); ``source`` names it in error messages."""
    if not data:
        raise format_error(source, "not a pprof profile: the file is empty")
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise format_error(source, f"not a pprof profile: corrupt gzip data ({exc})") from None
    message = profile_pb2.Profile()
    try:
        message.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise format_error(source, f"not a pprof profile: {exc or 'undecodable protobuf'}") from None
    try:
        return _convert(message)
    except _Bad as exc:
        raise format_error(source, f"not a pprof profile we can read: {exc}") from None


class _Bad(Exception):
    """A structural problem in a decoded message (becomes a ProfileFormatError)."""


def _string(table: list[str], index: int, what: str) -> str:
    if not 0 <= index < len(table):
        raise _Bad(f"{what} refers to string {index}, outside the {len(table)}-string table")
    return table[index]


def _unique_ids(ids: Iterable[int], what: str) -> None:
    seen: set[int] = set()
    for ident in ids:
        if ident == 0:
            raise _Bad(f"a {what} has id 0")
        if ident in seen:
            raise _Bad(f"two {what}s have id {ident}")
        seen.add(ident)


def _value_index(types: list[tuple[str, str]], default: str) -> int:
    """The index of the time-valued sample type to read weights from."""
    timed = [i for i, (_, unit) in enumerate(types) if unit in _TIME_UNITS_NS]
    if not timed:
        shown = ", ".join(f"{t}/{u}" for t, u in types) or "none"
        raise _Bad(f"no sample type counts time in ns, us, ms or s (sample types: {shown})")
    for i in timed:
        if default and types[i][0] == default:
            return i
    for i in timed:
        if types[i][0] in ("cpu", "wall"):
            return i
    return timed[0]


def _count_index(types: list[tuple[str, str]]) -> int | None:
    counts = [i for i, (_, unit) in enumerate(types) if unit == "count"]
    preferred = [i for i in counts if types[i][0] == "samples"]
    chosen = preferred or counts
    return chosen[0] if chosen else None


def _comments(message: profile_pb2.Profile, table: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for index in message.comment:
        key, sep, value = _string(table, index, "a comment").partition("=")
        if sep:
            values.setdefault(key, value)
    return values


def _int_comment(comments: dict[str, str], key: str) -> int | None:
    value = comments.get(key, "")
    return int(value) if value.isascii() and value.isdigit() else None


def _convert(message: profile_pb2.Profile) -> Profile:
    table = list(message.string_table)
    if not table or table[0] != "":
        raise _Bad('string_table[0] must be ""')
    types = [
        (_string(table, vt.type, "a sample type"), _string(table, vt.unit, "a sample type"))
        for vt in message.sample_type
    ]
    default = _string(table, message.default_sample_type, "default_sample_type")
    value_index = _value_index(types, default)
    count_index = _count_index(types)
    scale = _TIME_UNITS_NS[types[value_index][1]]
    mode = "wall" if types[value_index][0] == "wall" else "cpu"

    _unique_ids((f.id for f in message.function), "function")
    _unique_ids((loc.id for loc in message.location), "location")
    functions: dict[int, tuple[str, str, int]] = {
        f.id: (
            _string(table, f.name, "a function name"),
            _string(table, f.filename, "a file name"),
            f.start_line,
        )
        for f in message.function
    }
    frame_index: dict[Frame, int] = {}
    location_frames: dict[int, list[int]] = {}  # innermost first
    for location in message.location:
        indices = []
        lines = list(location.line)
        for line in lines:
            function = functions.get(line.function_id)
            if function is None:
                raise _Bad(f"location {location.id} refers to function {line.function_id}, which is missing")
            name, file, first_line = function
            frame = Frame(function=name, file=file, line=line.line, first_line=first_line)
            indices.append(frame_index.setdefault(frame, len(frame_index)))
        if not lines:  # an unsymbolized address
            frame = Frame(function=f"0x{location.address:x}", file="", line=0, first_line=0)
            indices.append(frame_index.setdefault(frame, len(frame_index)))
        location_frames[location.id] = indices
    frames: list[Frame] = list(frame_index)

    label_tid = table.index(_THREAD_ID) if _THREAD_ID in table else -1
    label_name = table.index(_THREAD_NAME) if _THREAD_NAME in table else -1
    stacks: list[tuple[int, ...]] = []
    stack_ids: dict[tuple[int, ...], int] = {}
    rows_stack: list[int] = []
    rows_tid: list[int] = []
    rows_weight: list[int] = []
    names: dict[int, str] = {}
    sampled = 0
    for number, sample in enumerate(message.sample):
        if len(sample.value) != len(types):
            raise _Bad(f"sample {number} has {len(sample.value)} values for {len(types)} sample types")
        leaf_first: list[int] = []
        for location_id in sample.location_id:
            found = location_frames.get(location_id)
            if found is None:
                raise _Bad(f"sample {number} refers to location {location_id}, which is missing")
            leaf_first.extend(found)
        stack = tuple(reversed(leaf_first))
        stack_id = stack_ids.get(stack)
        if stack_id is None:
            stack_id = stack_ids[stack] = len(stacks)
            stacks.append(stack)
        tid = 0
        name = ""
        for label in sample.label:
            if label.key == label_tid:
                tid = label.num
            elif label.key == label_name:
                name = _string(table, label.str, "a thread_name label")
        weight = sample.value[value_index] * scale
        if not 0 <= weight < 2**63:
            raise _Bad(f"sample {number} has a time value outside 0..2**63 ns: {weight}")
        if name:
            names.setdefault(tid, name)
        sampled += sample.value[count_index] if count_index is not None else 1
        rows_stack.append(stack_id)
        rows_tid.append(tid)
        rows_weight.append(weight)

    comments = _comments(message, table)
    interval = 0.0
    period_unit = ""
    if message.HasField("period_type"):
        period_unit = _string(table, message.period_type.unit, "period_type")
    if period_unit in _TIME_UNITS_NS and message.period > 0:
        interval = message.period * _TIME_UNITS_NS[period_unit] / 1e9
    sample_count = _int_comment(comments, "sample_count")
    meta = ProfileMeta(
        mode=mode,
        interval=interval,
        start_time=message.time_nanos / 1e9,
        duration=max(message.duration_nanos, 0) / 1e9,
        python_version=comments.get("python_version", ""),
        sample_count=sample_count if sample_count is not None else max(sampled, 0),
        dropped=_int_comment(comments, "dropped") or 0,
        program=comments.get("program", ""),
    )
    rows = len(rows_stack)
    threads = {tid: ThreadInfo(tid, names.get(tid, f"Thread {tid}")) for tid in sorted(set(rows_tid))}
    try:
        return Profile(
            frames,
            stacks,
            threads,
            stack=np.array(rows_stack, dtype=np.int64),
            tid=np.array(rows_tid, dtype=np.int64),
            time_ns=np.zeros(rows, dtype=np.int64),
            weight_ns=np.array(rows_weight, dtype=np.int64),
            flags=np.zeros(rows, dtype=np.uint8),
            meta=meta,
        )
    except InvalidArgument as exc:
        raise _Bad(str(exc)) from None
