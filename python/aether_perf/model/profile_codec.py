"""Profile <-> aprof document (kind ``"profile"``).

The JSON header holds ``meta`` (the ProfileMeta fields), ``frames`` (``[function, file, line,
first_line]`` each) and ``threads`` (``[tid, name]`` each); the columns are the five sample columns
plus the stacks table as ``stack_offsets`` (int64, one more than there are stacks) and
``stack_frames`` (int32, all stacks' frame indices end to end, root first).
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
import numpy.typing as npt

from aether_perf.errors import InvalidArgument
from aether_perf.fileio import StrPath
from aether_perf.model.fileformat import Document, format_error, read_document, write_document
from aether_perf.model.frame import Frame, ThreadInfo
from aether_perf.model.meta import ProfileMeta, meta_from_dict, meta_to_dict
from aether_perf.model.profile import Profile

__all__ = ["KIND", "load_profile", "profile_document", "save_profile"]

KIND = "profile"
_SAMPLE_COLUMNS = ("stack", "tid", "time_ns", "weight_ns", "flags")


def _check_extra(extra: dict[str, Any]) -> None:
    """Refuse an ``extra`` that would not come back equal (tuples, non-str keys, NaN, objects)."""
    try:
        again = json.loads(json.dumps(extra, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"meta.extra must hold only JSON types to be saved: {exc}") from None
    if again != extra or not _same_types(again, extra):
        raise InvalidArgument(
            "meta.extra must hold only JSON types (str keys; str, int, float, bool, None, list, dict) "
            "to be saved unchanged"
        )


def _same_types(a: object, b: object) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict) and isinstance(b, dict):
        return all(_same_types(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return all(_same_types(x, y) for x, y in zip(a, b, strict=True))
    return True


def profile_document(profile: Profile) -> tuple[dict[str, Any], dict[str, npt.NDArray[Any]]]:
    """The JSON header and the columns that represent ``profile``."""
    _check_extra(profile.meta.extra)
    lengths = np.fromiter((len(s) for s in profile.stacks), dtype=np.int64, count=len(profile.stacks))
    offsets = np.zeros(len(profile.stacks) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.fromiter((i for stack in profile.stacks for i in stack), dtype=np.int32, count=int(offsets[-1]))
    header = {
        "meta": meta_to_dict(profile.meta),
        "frames": [[f.function, f.file, f.line, f.first_line] for f in profile.frames],
        "threads": [[info.tid, info.name] for info in profile.threads.values()],
    }
    columns: dict[str, npt.NDArray[Any]] = {name: getattr(profile, name) for name in _SAMPLE_COLUMNS}
    columns["stack_offsets"] = offsets
    columns["stack_frames"] = flat
    return header, columns


def save_profile(profile: Profile, path: StrPath) -> None:
    """Write ``profile`` to ``path`` (atomically; the old file survives any failure)."""
    header, columns = profile_document(profile)
    write_document(path, KIND, header, columns)


class _Bad(Exception):
    pass


def _int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(f"{what} is not an integer")
    return value


def _str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise _Bad(f"{what} is not a string")
    return value


def _meta(raw: object) -> ProfileMeta:
    try:
        return meta_from_dict(raw)
    except ValueError as exc:
        raise _Bad(str(exc)) from None


def _frames(raw: object) -> list[Frame]:
    if not isinstance(raw, list):
        raise _Bad("frames is not a list")
    frames = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, list) or len(entry) != 4:
            raise _Bad(f"frames[{index}] is not [function, file, line, first_line]")
        function, file, line, first_line = entry
        what = f"frames[{index}]"
        frames.append(Frame(_str(function, what), _str(file, what), _int(line, what), _int(first_line, what)))
    return frames


def _threads(raw: object) -> dict[int, ThreadInfo]:
    if not isinstance(raw, list):
        raise _Bad("threads is not a list")
    threads: dict[int, ThreadInfo] = {}
    for index, entry in enumerate(raw):
        if not isinstance(entry, list) or len(entry) != 2:
            raise _Bad(f"threads[{index}] is not [tid, name]")
        tid = _int(entry[0], f"threads[{index}]")
        threads[tid] = ThreadInfo(tid, _str(entry[1], f"threads[{index}]"))
    return threads


def _stacks(offsets: npt.NDArray[Any], flat: npt.NDArray[Any]) -> list[tuple[int, ...]]:
    if offsets.dtype.kind not in "iu" or flat.dtype.kind not in "iu":
        raise _Bad("stack tables are not integer columns")
    if len(offsets) == 0 or offsets[0] != 0 or offsets[-1] != len(flat) or np.any(np.diff(offsets) < 0):
        raise _Bad("stack_offsets do not delimit stack_frames")
    values = flat.tolist()
    bounds = offsets.tolist()
    return [tuple(values[a:b]) for a, b in itertools.pairwise(bounds)]


def profile_from_document(document: Document) -> Profile:
    """Build the Profile a ``"profile"`` document describes; raise ``_Bad``/InvalidArgument if unsound."""
    header, columns = document.header, document.columns
    missing = [name for name in (*_SAMPLE_COLUMNS, "stack_offsets", "stack_frames") if name not in columns]
    if missing:
        raise _Bad(f"missing columns {', '.join(missing)}")
    return Profile(
        _frames(header.get("frames")),
        _stacks(columns["stack_offsets"], columns["stack_frames"]),
        _threads(header.get("threads")),
        stack=columns["stack"],
        tid=columns["tid"],
        time_ns=columns["time_ns"],
        weight_ns=columns["weight_ns"],
        flags=columns["flags"],
        meta=_meta(header.get("meta")),
    )


def load_profile(path: StrPath) -> Profile:
    """Read the profile at ``path``; raise ProfileFormatError (one line, naming ``path``) if unsound."""
    document = read_document(path)
    if document.kind != KIND:
        raise format_error(path, f"holds a {document.kind!r} document, not a profile")
    try:
        return profile_from_document(document)
    except (_Bad, InvalidArgument) as exc:
        raise format_error(path, f"malformed profile: {exc}") from None
