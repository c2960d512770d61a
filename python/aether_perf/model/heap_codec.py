"""HeapSnapshot <-> aprof document (kind ``"heap"``), and its speedscope and collapsed exports.

The JSON header holds ``meta`` (the HeapMeta fields) and ``frames`` (``[function, file, line,
first_line]`` each); the columns are the six row columns (``stack``, ``size``, ``bytes``,
``count``, ``tid``, ``time_ns``) plus the stacks table as ``stack_offsets`` (int64, one more than
there are stacks) and ``stack_frames`` (int32, all stacks' frame indices end to end, root first),
as in a profile document.

A snapshot with a memory series (:class:`~aether_perf.model.memory_series.MemorySeries`) adds the
header field ``series`` (``interval_ns``, ``has_rss``) and the columns ``series_time_ns``,
``series_heap_bytes`` and ``series_rss_bytes``. Readers that predate the series ignore them (a
reader checks only the columns it needs), and files without them load with ``series`` None, so the
container's format version did not change.

The speedscope export is one ``sampled`` profile with ``unit`` ``bytes``: one sample per stack that
holds live bytes, weighted by them, so ``endValue`` is the snapshot's total bytes. It validates
against speedscope's draft-07 schema.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from aether_perf.errors import InvalidArgument
from aether_perf.fileio import PathOrText, StrPath, open_text_output
from aether_perf.model.fileformat import Document, format_error, read_document, write_document
from aether_perf.model.heap import HEAP_MODES, HeapMeta, HeapSnapshot
from aether_perf.model.memory_series import MemorySeries
from aether_perf.model.profile_codec import _Bad, _check_extra, _frames, _stacks

__all__ = [
    "KIND",
    "heap_document",
    "heap_from_document",
    "load_heap",
    "save_heap",
    "speedscope_json",
    "write_collapsed",
    "write_speedscope",
]

KIND = "heap"
_ROW_COLUMNS = HeapSnapshot.COLUMNS
_SCHEMA_URL = "https://www.speedscope.app/file-format-schema.json"
_NO_FRAMES = "<no Python frames>"

_META_TYPES: dict[str, tuple[type, ...]] = {
    "mode": (str,),
    "sample_rate": (int,),
    "start_time": (int, float),
    "duration": (int, float),
    "python_version": (str,),
    "native": (bool,),
    "allocated_bytes": (int,),
    "freed_bytes": (int,),
    "allocations": (int,),
    "frees": (int,),
    "peak_bytes": (int,),
    "current_bytes": (int,),
    "extra": (dict,),
}


def meta_to_dict(meta: HeapMeta) -> dict[str, Any]:
    """The fields of ``meta`` as a dict (``extra`` is shallow-copied)."""
    return {name: (dict(meta.extra) if name == "extra" else getattr(meta, name)) for name in _META_TYPES}


def meta_from_dict(raw: object) -> HeapMeta:
    """The HeapMeta :func:`meta_to_dict` gave (through JSON); ValueError if ``raw`` is unfit."""
    if not isinstance(raw, dict):
        raise ValueError("meta is not an object")
    values: dict[str, Any] = {}
    for name, types in _META_TYPES.items():
        value = raw.get(name)
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            raise ValueError(f"meta.{name} is missing or of the wrong type")
        if float in types and isinstance(value, int):
            value = float(value)
        values[name] = value
    if values["mode"] not in HEAP_MODES:
        raise ValueError(f"meta.mode {values['mode']!r} is not one of {', '.join(HEAP_MODES)}")
    return HeapMeta(**values)


def heap_document(snapshot: HeapSnapshot) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
    """The JSON header and the columns that represent ``snapshot``."""
    _check_extra(snapshot.meta.extra)
    stacks = snapshot.stacks
    lengths = np.fromiter((len(s) for s in stacks), dtype=np.int64, count=len(stacks))
    offsets = np.zeros(len(stacks) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.fromiter((i for stack in stacks for i in stack), dtype=np.int32, count=int(offsets[-1]))
    header = {
        "meta": meta_to_dict(snapshot.meta),
        "frames": [[f.function, f.file, f.line, f.first_line] for f in snapshot.frames],
    }
    columns: dict[str, npt.NDArray[Any]] = {name: getattr(snapshot, name) for name in _ROW_COLUMNS}
    columns["stack_offsets"] = offsets
    columns["stack_frames"] = flat
    series = snapshot.series
    if series is not None:
        header["series"] = series.header()
        for name in MemorySeries.COLUMNS:
            columns[f"series_{name}"] = getattr(series, name)
    return header, columns


def _series(header: dict[str, Any], columns: dict[str, npt.NDArray[Any]]) -> MemorySeries | None:
    raw = header.get("series")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _Bad("series is not an object")
    missing = [n for n in MemorySeries.COLUMNS if f"series_{n}" not in columns]
    if missing:
        raise _Bad(f"missing series columns {', '.join(missing)}")
    interval, has_rss = raw.get("interval_ns"), raw.get("has_rss")
    if isinstance(interval, bool) or not isinstance(interval, int) or not isinstance(has_rss, bool):
        raise _Bad("series.interval_ns or series.has_rss is missing or of the wrong type")
    return MemorySeries(
        interval_ns=interval,
        has_rss=has_rss,
        **{name: columns[f"series_{name}"] for name in MemorySeries.COLUMNS},
    )


def save_heap(snapshot: HeapSnapshot, path: StrPath) -> None:
    """Write ``snapshot`` to ``path`` (atomically; the old file survives any failure)."""
    header, columns = heap_document(snapshot)
    write_document(path, KIND, header, columns)


def heap_from_document(document: Document) -> HeapSnapshot:
    """Build the snapshot a ``"heap"`` document describes; raise ``_Bad``/InvalidArgument if unsound."""
    header, columns = document.header, document.columns
    missing = [name for name in (*_ROW_COLUMNS, "stack_offsets", "stack_frames") if name not in columns]
    if missing:
        raise _Bad(f"missing columns {', '.join(missing)}")
    try:
        meta = meta_from_dict(header.get("meta"))
    except ValueError as exc:
        raise _Bad(str(exc)) from None
    return HeapSnapshot(
        _frames(header.get("frames")),
        _stacks(columns["stack_offsets"], columns["stack_frames"]),
        stack=columns["stack"],
        size=columns["size"],
        bytes=columns["bytes"],
        count=columns["count"],
        tid=columns["tid"],
        time_ns=columns["time_ns"],
        meta=meta,
        series=_series(header, columns),
    )


def load_heap(path: StrPath) -> HeapSnapshot:
    """Read the heap snapshot at ``path``; raise ProfileFormatError (one line, naming it) if unsound."""
    document = read_document(path)
    if document.kind != KIND:
        raise format_error(path, f"holds a {document.kind!r} document, not a heap snapshot")
    try:
        return heap_from_document(document)
    except (_Bad, InvalidArgument) as exc:
        raise format_error(path, f"malformed heap snapshot: {exc}") from None


# -- exports -------------------------------------------------------------------------------------


def _live_stacks(snapshot: HeapSnapshot, value: Literal["bytes", "count"]) -> list[tuple[int, int]]:
    """``(stack id, whole number)`` per stack with a non-zero total of ``value``, by stack id."""
    n = len(snapshot.stacks)
    if value == "bytes":
        sums = np.zeros(n, dtype=np.int64)
        np.add.at(sums, snapshot.stack, snapshot.bytes)
        totals = sums.tolist()
    else:
        counts = np.bincount(snapshot.stack, weights=snapshot.count, minlength=n) if n else np.zeros(0)
        totals = [round(c) for c in counts.tolist()]
    return [(stack_id, total) for stack_id, total in enumerate(totals) if total]


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items() if _keep(v)}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value if _keep(v)]
    if isinstance(value, (str, bool, int, float)):
        return value
    return str(value)


def _keep(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and not math.isfinite(value))


def speedscope_json(snapshot: HeapSnapshot, *, name: str | None = None) -> dict[str, Any]:
    """The speedscope document for ``snapshot`` as a JSON-ready dict (what the export writes)."""
    frames: list[dict[str, Any]] = []
    for frame in snapshot.frames:
        entry: dict[str, Any] = {"name": frame.function}
        if frame.file:
            entry["file"] = frame.file
        if frame.line:
            entry["line"] = frame.line
        frames.append(entry)
    rows = _live_stacks(snapshot, "bytes")
    meta = meta_to_dict(snapshot.meta)
    meta["extra"] = _json_safe(meta["extra"])
    title = name if name is not None else f"aether live heap ({snapshot.meta.mode})"
    return {
        "$schema": _SCHEMA_URL,
        "exporter": "aether-native",
        "name": title,
        "activeProfileIndex": 0,
        "shared": {"frames": frames},
        "profiles": [
            {
                "type": "sampled",
                "name": f"Live bytes ({snapshot.meta.mode})",
                "unit": "bytes",
                "startValue": 0,
                "endValue": sum(total for _, total in rows),
                "samples": [list(snapshot.stacks[stack_id]) for stack_id, _ in rows],
                "weights": [total for _, total in rows],
            }
        ],
        "aether": {"version": 1, "kind": KIND, "meta": meta},
    }


def write_speedscope(snapshot: HeapSnapshot, file: PathOrText, *, name: str | None = None) -> None:
    """Write speedscope JSON to a path (atomically) or an open text file."""
    text = json.dumps(speedscope_json(snapshot, name=name), ensure_ascii=True, separators=(",", ":"))
    with open_text_output(file) as handle:
        handle.write(text)


def collapse(
    snapshot: HeapSnapshot, *, value: Literal["bytes", "count"] = "bytes", lines: bool = True
) -> list[tuple[str, int]]:
    """``(folded stack, number)`` pairs, sorted by folded stack (stacks whose labels coincide merge)."""
    from aether_perf.export.collapsed import frame_label

    if value not in ("bytes", "count"):
        raise InvalidArgument(f"value must be 'bytes' or 'count', got {value!r}")
    labels = [frame_label(frame, lines=lines) for frame in snapshot.frames]
    sums: dict[str, int] = {}
    for stack_id, total in _live_stacks(snapshot, value):
        stack = snapshot.stacks[stack_id]
        folded = ";".join(labels[i] for i in stack) if stack else _NO_FRAMES
        sums[folded] = sums.get(folded, 0) + total
    return sorted(sums.items())


def write_collapsed(
    snapshot: HeapSnapshot,
    file: PathOrText,
    *,
    value: Literal["bytes", "count"] = "bytes",
    lines: bool = True,
) -> None:
    """Write collapsed stacks (``frame;frame;... number``) to a path (atomically) or an open file."""
    rows = collapse(snapshot, value=value, lines=lines)
    with open_text_output(file) as handle:
        handle.writelines(f"{stack} {number}\n" for stack, number in rows)
