"""speedscope JSON (https://www.speedscope.app/file-format-schema.json).

:func:`write` emits one ``sampled`` profile per thread, named ``Thread <tid> "<name>"`` (the main
thread first, then by tid), with ``unit`` ``nanoseconds``: each weight is the summed ``weight_ns``
of a run of consecutive samples (in time order) of that thread with the same stack, so the time
order view stays exact and ``endValue`` is the thread's summed weight (a thread without samples
gets an empty profile). Stacks are root first.
``shared.frames`` has one entry per profile frame: ``name`` is the function (its qualname), ``file``
and ``line`` are left out when empty or 0 (speedscope's schema rejects ``null``). The output
validates against speedscope's draft-07 schema.

What speedscope cannot hold (the metadata and each function's first line) goes under a top-level
``"aether"`` key, which speedscope ignores; :func:`read` uses it when present. Per-sample flags and
timestamps are not kept: :func:`read` gives each sample the time its run ends at.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import re
from typing import Any

import numpy as np

from aether_perf.analysis.threads import thread_order
from aether_perf.export.textinput import read_json
from aether_perf.fileio import PathOrText, open_text_output
from aether_perf.model.fileformat import format_error
from aether_perf.model.frame import Frame, ThreadInfo
from aether_perf.model.meta import ProfileMeta, meta_from_dict, meta_to_dict
from aether_perf.model.profile import Profile

__all__ = ["EXTENSION_KEY", "SCHEMA_URL", "exporter_id", "read", "to_json", "write"]

SCHEMA_URL = "https://www.speedscope.app/file-format-schema.json"
#: The top-level key holding what speedscope has no place for.
EXTENSION_KEY = "aether"
_EXTENSION_VERSION = 1
_UNIT_NS = {"nanoseconds": 1.0, "microseconds": 1e3, "milliseconds": 1e6, "seconds": 1e9}
_THREAD_NAME = re.compile(r'^Thread (\d+) "(.*)"$', re.DOTALL)


def exporter_id() -> str:
    """``aether-native@<version>`` when the distribution is installed, else ``aether-native``."""
    try:
        return f"aether-native@{importlib.metadata.version('aether-native')}"
    except importlib.metadata.PackageNotFoundError:
        return "aether-native"


def _profile_name(info: ThreadInfo) -> str:
    return f'Thread {info.tid} "{info.name}"'


def _json_safe(value: Any) -> Any:
    """Best-effort JSON form of ``extra``: no None, no NaN, str keys, lists for tuples, str otherwise."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items() if _keep(v)}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value if _keep(v)]
    if isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value
    return str(value)


def _keep(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and not math.isfinite(value))


def _thread_runs(profile: Profile) -> list[tuple[ThreadInfo, list[int], list[int]]]:
    """Per thread in display order: the stack id and summed weight of each run of samples.

    A run is consecutive samples (in time order) of the thread with the same stack.
    """
    runs: dict[int, tuple[list[int], list[int]]] = {tid: ([], []) for tid in profile.threads}
    if len(profile):
        order = np.lexsort((profile.time_ns, profile.tid))
        tid = profile.tid[order]
        stack = profile.stack[order]
        change = np.empty(len(order), dtype=bool)
        change[0] = True
        np.not_equal(stack[1:], stack[:-1], out=change[1:])
        change[1:] |= tid[1:] != tid[:-1]
        starts = np.flatnonzero(change)
        weights = np.add.reduceat(profile.weight_ns[order], starts)
        run_tid = tid[starts]
        bounds = np.flatnonzero(np.diff(run_tid)) + 1
        for lo, hi in zip([0, *bounds.tolist()], [*bounds.tolist(), len(starts)], strict=True):
            runs[int(run_tid[lo])] = (stack[starts[lo:hi]].tolist(), weights[lo:hi].tolist())
    return [(profile.threads[tid], *runs[tid]) for tid in thread_order(profile)]


def _document_head(profile: Profile, name: str | None) -> dict[str, Any]:
    """Everything but ``profiles``."""
    frames: list[dict[str, Any]] = []
    for frame in profile.frames:
        entry: dict[str, Any] = {"name": frame.function}
        if frame.file:
            entry["file"] = frame.file
        if frame.line:
            entry["line"] = frame.line
        frames.append(entry)
    meta = meta_to_dict(profile.meta)
    meta["extra"] = _json_safe(meta["extra"])
    if name is None:
        program = profile.meta.program
        name = f"{program} ({profile.meta.mode})" if program else f"aether {profile.meta.mode} profile"
    return {
        "$schema": SCHEMA_URL,
        "exporter": exporter_id(),
        "name": name,
        "activeProfileIndex": 0,
        "shared": {"frames": frames},
        EXTENSION_KEY: {
            "version": _EXTENSION_VERSION,
            "meta": meta,
            "firstLines": [frame.first_line for frame in profile.frames],
        },
    }


def _sampled(info: ThreadInfo, weights: list[int]) -> dict[str, Any]:
    return {
        "type": "sampled",
        "name": _profile_name(info),
        "unit": "nanoseconds",
        "startValue": 0,
        "endValue": sum(weights),
    }


def to_json(profile: Profile, *, name: str | None = None) -> dict[str, Any]:
    """The speedscope document for ``profile`` as a JSON-ready dict (what :func:`write` writes)."""
    stacks = [list(stack) for stack in profile.stacks]
    document = _document_head(profile, name)
    document["profiles"] = [
        {**_sampled(info, weights), "samples": [stacks[i] for i in stack_ids], "weights": weights}
        for info, stack_ids, weights in _thread_runs(profile)
    ]
    return document


def _dumps(value: object) -> str:
    # ASCII output: any stream encoding takes it, and lone surrogates (undecodable file names)
    # travel as \udcXX escapes instead of failing the write.
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"))


def write(profile: Profile, file: PathOrText, *, name: str | None = None) -> None:
    """Write ``profile`` as speedscope JSON to a path (atomically) or an open text file.

    The text equals ``json.dumps(to_json(profile))`` up to key order; each distinct stack is
    encoded once and the sample lists are joined as text, which is several times faster than
    encoding a million small lists.
    """
    stack_text = [_dumps(list(stack)) for stack in profile.stacks]
    profiles = []
    for info, stack_ids, weights in _thread_runs(profile):
        head = _dumps(_sampled(info, weights))[:-1]
        samples = ",".join([stack_text[i] for i in stack_ids])
        profiles.append(f'{head},"samples":[{samples}],"weights":[{",".join(map(str, weights))}]}}')
    text = _dumps(_document_head(profile, name))[:-1] + ',"profiles":[' + ",".join(profiles) + "]}"
    with open_text_output(file) as handle:
        handle.write(text)


# -- reading -------------------------------------------------------------------------------------


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class _Bad(Exception):
    pass


def read(file: PathOrText) -> Profile:
    """Read a speedscope file of sampled profiles (ours, or another tool's) into a Profile.

    Raises ProfileFormatError (one line, naming the file) for a file that is missing, not JSON, not
    speedscope, or holds evented profiles or non-time units.
    """
    label, data = read_json(file, "a speedscope file")
    try:
        return _from_json(data)
    except _Bad as exc:
        raise format_error(label, f"not a speedscope file we can read: {exc}") from None


def _frames(data: dict[str, Any]) -> list[Frame]:
    shared = data.get("shared")
    raw = shared.get("frames") if isinstance(shared, dict) else None
    if not isinstance(raw, list):
        raise _Bad("no shared.frames list")
    extension = data.get(EXTENSION_KEY)
    first_lines: list[Any] = []
    if isinstance(extension, dict) and extension.get("version") == _EXTENSION_VERSION:
        candidate = extension.get("firstLines")
        if isinstance(candidate, list) and len(candidate) == len(raw):
            first_lines = candidate
    frames = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise _Bad(f"shared.frames[{index}] has no name")
        file = entry.get("file", "")
        line = entry.get("line", 0)
        if not isinstance(file, str) or not _number(line):
            raise _Bad(f"shared.frames[{index}] has a malformed file or line")
        first_line = first_lines[index] if first_lines else 0
        if not isinstance(first_line, int) or isinstance(first_line, bool):
            first_line = 0
        frames.append(Frame(entry["name"], file, int(line), first_line))
    return frames


def _from_json(data: Any) -> Profile:
    if not isinstance(data, dict):
        raise _Bad("the top level is not an object")
    if data.get("$schema") != SCHEMA_URL:
        raise _Bad(f"$schema is not {SCHEMA_URL}")
    frames = _frames(data)
    raw_profiles = data.get("profiles")
    if not isinstance(raw_profiles, list):
        raise _Bad("no profiles list")

    stack_ids: dict[tuple[int, ...], int] = {}
    threads: dict[int, ThreadInfo] = {}
    stack_col: list[int] = []
    tid_col: list[int] = []
    time_col: list[int] = []
    weight_col: list[int] = []
    pending_names: list[tuple[int, str]] = []
    for index, raw in enumerate(raw_profiles):
        if not isinstance(raw, dict) or raw.get("type") != "sampled":
            kind = raw.get("type") if isinstance(raw, dict) else None
            raise _Bad(f"profiles[{index}] is {kind!r}, only 'sampled' profiles can be read")
        unit = raw.get("unit")
        scale = _UNIT_NS.get(unit) if isinstance(unit, str) else None
        if scale is None:
            raise _Bad(f"profiles[{index}] has unit {raw.get('unit')!r}, not a unit of time")
        samples, weights = raw.get("samples"), raw.get("weights")
        if not isinstance(samples, list) or not isinstance(weights, list) or len(samples) != len(weights):
            raise _Bad(f"profiles[{index}] lacks samples and weights of equal length")
        name = raw.get("name")
        match = _THREAD_NAME.match(name) if isinstance(name, str) else None
        if match is not None and int(match.group(1)) not in threads:
            tid = int(match.group(1))
            threads[tid] = ThreadInfo(tid, match.group(2))
        else:
            tid = -(index + 1)  # renumbered below, once all parsed tids are known
            pending_names.append((tid, name if isinstance(name, str) else f"Profile {index}"))
            threads[tid] = ThreadInfo(tid, pending_names[-1][1])
        elapsed = 0
        for sample, weight in zip(samples, weights, strict=True):
            if not isinstance(sample, list) or not all(isinstance(i, int) for i in sample):
                raise _Bad(f"profiles[{index}] has a sample that is not a list of frame indices")
            if not _number(weight) or weight < 0:
                raise _Bad(f"profiles[{index}] has an invalid weight {weight!r}")
            key = tuple(sample)
            stack_id = stack_ids.setdefault(key, len(stack_ids))
            weight_ns = round(weight * scale)
            elapsed += weight_ns
            stack_col.append(stack_id)
            tid_col.append(tid)
            time_col.append(elapsed)
            weight_col.append(weight_ns)

    if pending_names:
        # Profiles whose names are not 'Thread <tid> "<name>"' get tids after the parsed ones.
        next_tid = max([t for t in threads if t >= 0], default=0) + 1
        renumber = {}
        for old, name in pending_names:
            renumber[old] = next_tid
            threads[next_tid] = ThreadInfo(next_tid, name)
            del threads[old]
            next_tid += 1
        tid_col = [renumber.get(t, t) for t in tid_col]

    meta = _meta(data, len(stack_col), max(_per_thread_totals(tid_col, weight_col), default=0))
    try:
        return Profile(
            frames,
            list(stack_ids),
            threads,
            stack=np.asarray(stack_col, dtype=np.int64),
            tid=np.asarray(tid_col, dtype=np.int64),
            time_ns=np.asarray(time_col, dtype=np.int64),
            weight_ns=np.asarray(weight_col, dtype=np.int64),
            flags=np.zeros(len(stack_col), dtype=np.uint8),
            meta=meta,
        )
    except ValueError as exc:  # InvalidArgument: a frame index out of range and the like
        raise _Bad(str(exc)) from None


def _per_thread_totals(tids: list[int], weights: list[int]) -> list[int]:
    totals: dict[int, int] = {}
    for tid, weight in zip(tids, weights, strict=True):
        totals[tid] = totals.get(tid, 0) + weight
    return list(totals.values())


def _meta(data: dict[str, Any], samples: int, longest_ns: int) -> ProfileMeta:
    extension = data.get(EXTENSION_KEY)
    if isinstance(extension, dict) and extension.get("version") == _EXTENSION_VERSION:
        try:
            return meta_from_dict(extension.get("meta"))
        except ValueError:
            pass
    extra: dict[str, Any] = {"imported_from": "speedscope"}
    if isinstance(data.get("exporter"), str):
        extra["exporter"] = data["exporter"]
    name = data.get("name")
    return ProfileMeta(
        mode="cpu",
        interval=0.0,
        start_time=0.0,
        duration=longest_ns / 1e9,
        python_version="",
        sample_count=samples,
        dropped=0,
        program=name if isinstance(name, str) else "",
        extra=extra,
    )
