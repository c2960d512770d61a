"""speedscope export: schema-valid, one profile per thread, exact weights; and reading it back."""

from __future__ import annotations

import dataclasses
import io
import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from aether_perf import Frame, Profile, ProfileFormatError, ProfileMeta, ThreadInfo
from aether_perf.export import speedscope
from aether_perf.model import FLAG_IDLE

SCHEMA = json.loads((Path(__file__).parent / "data" / "speedscope-file-format-schema.json").read_text())
MS = 1_000_000
MAIN, WORKER, SILENT = 4242, 17, 99


def make_profile() -> Profile:
    frames = [
        Frame("main", "app.py", 10, 1),
        Frame("work", "app.py", 20, 15),
        Frame("work", "app.py", 22, 15),
        Frame("parse", "parse.py", 5, 3),
        Frame("fib", "fib.py", 2, 1),
        Frame("fib", "fib.py", 3, 1),
    ]
    stacks = [(0, 1, 3), (0, 2), (0, 4, 5), ()]
    return Profile(
        frames,
        stacks,
        {
            WORKER: ThreadInfo(WORKER, "worker"),
            MAIN: ThreadInfo(MAIN, "MainThread"),
            SILENT: ThreadInfo(SILENT, "silent"),
        },
        stack=[0, 1, 0, 1, 3, 0, 1, 2],
        tid=[MAIN, WORKER, MAIN, MAIN, WORKER, MAIN, MAIN, MAIN],
        time_ns=[20 * MS, 40 * MS, 40 * MS, 75 * MS, 50 * MS, 60 * MS, 90 * MS, 100 * MS],
        weight_ns=[20 * MS, 40 * MS, 20 * MS, 15 * MS, 10 * MS, 20 * MS, 15 * MS, 10 * MS],
        flags=[0, FLAG_IDLE, 0, 0, 0, 0, 0, 0],
        meta=ProfileMeta(
            "wall", 0.001, 1_790_000_000.5, 0.1, "3.12.1", 8, 1, "app.py", {"pid": 4242, "x": None}
        ),
    )


def unicode_profile() -> Profile:
    frames = [
        Frame("Klass.método 🚀", "/src/模块.py", 7, 5),
        Frame("<module>", "", 0, 0),
        Frame("g", "/srv/caf\udce9.py", 4, 4),  # an undecodable file name (surrogateescape)
    ]
    return Profile(
        frames,
        [(), (1, 0), (1, 2)],
        {1: ThreadInfo(1, 'näme "quoted"')},
        stack=[0, 1, 2, 1],
        tid=[1, 1, 1, 1],
        time_ns=[1, 2, 3, 4],
        weight_ns=[5, 6, 0, 8],
        flags=[0, 0, 0, 0],
        meta=ProfileMeta("cpu", 0.0001, 0.0, 0.0, "3.13.0", 4, 0, "prögram"),
    )


def empty_profile() -> Profile:
    return Profile(
        [],
        [],
        {},
        stack=[],
        tid=[],
        time_ns=[],
        weight_ns=[],
        flags=[],
        meta=ProfileMeta("cpu", 0.001, 0.0, 0.0, "3.11.7", 0, 0),
    )


def export(profile: Profile, **kwargs: Any) -> dict[str, Any]:
    buffer = io.StringIO()
    speedscope.write(profile, buffer, **kwargs)
    document: dict[str, Any] = json.loads(buffer.getvalue())
    return document


def contains_none(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(contains_none(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_none(v) for v in value)
    return False


@pytest.mark.parametrize("build", [make_profile, unicode_profile, empty_profile])
def test_output_validates_against_the_schema(build: Any) -> None:
    document = export(build())
    errors = list(jsonschema.Draft7Validator(SCHEMA).iter_errors(document))
    assert errors == []
    assert not contains_none(document)


def test_structure() -> None:
    profile = make_profile()
    document = export(profile)
    assert document["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    assert document["exporter"].startswith("aether-native")
    assert document["name"] == "app.py (wall)"
    assert document["activeProfileIndex"] == 0
    assert document["shared"]["frames"] == [
        {"name": "main", "file": "app.py", "line": 10},
        {"name": "work", "file": "app.py", "line": 20},
        {"name": "work", "file": "app.py", "line": 22},
        {"name": "parse", "file": "parse.py", "line": 5},
        {"name": "fib", "file": "fib.py", "line": 2},
        {"name": "fib", "file": "fib.py", "line": 3},
    ]
    names = [p["name"] for p in document["profiles"]]
    assert names == ['Thread 4242 "MainThread"', 'Thread 17 "worker"', 'Thread 99 "silent"']
    main, worker, silent = document["profiles"]
    for entry in document["profiles"]:
        assert entry["type"] == "sampled"
        assert entry["unit"] == "nanoseconds"
        assert entry["startValue"] == 0
        assert entry["endValue"] == sum(entry["weights"])
        assert len(entry["samples"]) == len(entry["weights"])
    # Main thread in time order: parse x3 (20ms each), work@22 x2 (15ms), fib>fib; runs merged.
    assert main["samples"] == [[0, 1, 3], [0, 2], [0, 4, 5]]  # root first
    assert main["weights"] == [60 * MS, 30 * MS, 10 * MS]
    assert main["endValue"] == 100 * MS
    assert worker["samples"] == [[0, 2], []]
    assert worker["weights"] == [40 * MS, 10 * MS]
    assert silent["samples"] == [] and silent["endValue"] == 0
    assert document == speedscope.to_json(profile)  # the fast text writer says the same as the dict


def test_runs_merge_only_consecutive_samples() -> None:
    frames = [Frame("a", "x.py", 1, 1), Frame("b", "x.py", 5, 5)]
    profile = Profile(
        frames,
        [(0,), (0, 1)],
        {},
        stack=[1, 0, 0, 1, 0],
        tid=[1, 1, 1, 1, 1],
        time_ns=[50, 10, 20, 30, 40],  # time order: a a b a b
        weight_ns=[5, 1, 2, 3, 4],
        flags=[0] * 5,
        meta=ProfileMeta("cpu", 0.001, 0.0, 1.0, "3.11.7", 5, 0),
    )
    (only,) = export(profile)["profiles"]
    assert only["samples"] == [[0], [0, 1], [0], [0, 1]]
    assert only["weights"] == [3, 3, 4, 5]
    assert only["name"] == 'Thread 1 "Thread 1"'


def test_optional_keys_are_left_out_and_names_given() -> None:
    document = export(unicode_profile(), name="my run")
    assert document["name"] == "my run"
    assert document["shared"]["frames"] == [
        {"name": "Klass.método 🚀", "file": "/src/模块.py", "line": 7},
        {"name": "<module>"},
        {"name": "g", "file": "/srv/caf\udce9.py", "line": 4},
    ]
    assert document["profiles"][0]["name"] == 'Thread 1 "näme "quoted""'
    assert document["profiles"][0]["samples"][0] == []
    assert export(empty_profile())["name"] == "aether cpu profile"


def test_write_to_path_is_utf8_and_atomic(tmp_path: Path) -> None:
    path = tmp_path / "out.speedscope.json"
    unicode_profile().to_speedscope(path)
    assert path.read_bytes().isascii()  # non-ASCII travels as JSON escapes
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["shared"]["frames"][0]["name"] == "Klass.método 🚀"
    assert os.listdir(tmp_path) == ["out.speedscope.json"]


@pytest.mark.parametrize("build", [make_profile, unicode_profile, empty_profile])
def test_round_trip(build: Any, tmp_path: Path) -> None:
    profile = build()
    path = tmp_path / "p.json"
    speedscope.write(profile, path)
    again = speedscope.read(path)
    assert again.frames == profile.frames  # first lines come back through the "aether" key
    expected_extra = {k: v for k, v in profile.meta.extra.items() if v is not None}
    assert again.meta == dataclasses.replace(profile.meta, extra=expected_extra)
    assert again.threads == profile.threads
    for tid in profile.thread_ids():
        mine = profile.filter(thread=tid)
        theirs = again.filter(thread=tid)
        assert theirs.total_weight_ns == mine.total_weight_ns
        totals_mine: dict[tuple[int, ...], int] = {}
        totals_theirs: dict[tuple[int, ...], int] = {}
        for source, into in ((mine, totals_mine), (theirs, totals_theirs)):
            for stack_id, weight in zip(source.stack.tolist(), source.weight_ns.tolist(), strict=True):
                key = source.stacks[stack_id]
                into[key] = into.get(key, 0) + weight
        assert totals_theirs == totals_mine


def test_round_trip_metadata_best_effort() -> None:
    profile = make_profile()
    again = speedscope.read(io.StringIO(json.dumps(export(profile))))
    assert again.meta.mode == "wall"
    assert again.meta.interval == 0.001
    assert again.meta.start_time == 1_790_000_000.5
    assert again.meta.sample_count == 8 and again.meta.dropped == 1
    assert again.meta.extra == {"pid": 4242}  # None cannot be written (speedscope has no null)
    assert again.main_thread_id() == MAIN
    # Samples come back in time order per thread, each at the end of its run.
    main = again.filter(thread=MAIN)
    assert main.time_ns.tolist() == [60 * MS, 90 * MS, 100 * MS]


def test_read_foreign_file_without_our_key() -> None:
    """A py-spy-style file: unit seconds, no 'aether' key, a profile name we cannot parse."""
    document = {
        "$schema": "https://www.speedscope.app/file-format-schema.json",
        "name": "py-spy profile",
        "exporter": "py-spy@0.4.3",
        "shared": {"frames": [{"name": "main", "file": "a.py", "line": 3}, {"name": "leaf", "file": "a.py"}]},
        "profiles": [
            {"type": "sampled", "name": 'Thread 77 "MainThread"', "unit": "seconds", "startValue": 0,
             "endValue": 0.03, "samples": [[0, 1], [0]], "weights": [0.01, 0.02]},
            {"type": "sampled", "name": "Process 5 Thread 9", "unit": "milliseconds", "startValue": 0,
             "endValue": 4, "samples": [[0]], "weights": [4]},
        ],
    }  # fmt: skip
    profile = speedscope.read(io.StringIO(json.dumps(document)))
    assert profile.frames == [Frame("main", "a.py", 3, 0), Frame("leaf", "a.py", 0, 0)]
    assert profile.threads == {77: ThreadInfo(77, "MainThread"), 78: ThreadInfo(78, "Process 5 Thread 9")}
    assert profile.weight_ns.tolist() == [10 * MS, 20 * MS, 4 * MS]
    assert profile.meta.program == "py-spy profile"
    assert profile.meta.extra == {"imported_from": "speedscope", "exporter": "py-spy@0.4.3"}
    assert profile.meta.duration == pytest.approx(0.03)


def _document(profile: dict[str, object]) -> str:
    return json.dumps({"$schema": speedscope.SCHEMA_URL, "shared": {"frames": []}, "profiles": [profile]})


_SAMPLED = {"type": "sampled", "name": "x", "startValue": 0, "endValue": 0}


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("not json", "not JSON"),
        ("[]", "top level is not an object"),
        ('{"$schema": "x"}', "$schema is not"),
        (
            _document(
                {"type": "evented", "name": "x", "unit": "none", "startValue": 0, "endValue": 0, "events": []}
            ),
            "only 'sampled' profiles",
        ),
        (_document({**_SAMPLED, "unit": "bytes", "samples": [], "weights": []}), "not a unit of time"),
        (
            _document({**_SAMPLED, "unit": "seconds", "samples": [[3]], "weights": [1]}),
            "outside the 0-frame table",
        ),
        (_document({**_SAMPLED, "unit": "seconds", "samples": [[]], "weights": []}), "of equal length"),
        (_document({**_SAMPLED, "unit": "seconds", "samples": [[]], "weights": [-1]}), "invalid weight"),
    ],
)
def test_read_errors(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ProfileFormatError) as caught:
        speedscope.read(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and words in message and "\n" not in message
    with pytest.raises(ProfileFormatError, match="no such file"):
        speedscope.read(tmp_path / "missing.json")


def test_a_million_samples(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    frames = [Frame(f"f{i}", "big.py", i + 1, i) for i in range(30)]
    stacks = [tuple(range(depth)) for depth in range(1, 31)]
    n = 1_000_000
    tids = rng.integers(1, 4, n)
    weight = rng.integers(1, 2_000_000, n)
    profile = Profile(
        frames,
        stacks,
        {1: ThreadInfo(1, "MainThread")},
        stack=rng.integers(0, len(stacks), n),
        tid=tids,
        time_ns=np.arange(n, dtype=np.int64),
        weight_ns=weight,
        flags=np.zeros(n, dtype=np.uint8),
        meta=ProfileMeta("cpu", 0.001, 0.0, 1000.0, "3.11.7", n, 0),
    )
    path = tmp_path / "big.json"
    profile.to_speedscope(path)
    document = json.loads(path.read_text(encoding="utf-8"))
    assert [p["name"] for p in document["profiles"]] == [
        'Thread 1 "MainThread"',
        'Thread 2 "Thread 2"',
        'Thread 3 "Thread 3"',
    ]
    for tid, entry in zip((1, 2, 3), document["profiles"], strict=True):
        assert entry["endValue"] == sum(entry["weights"]) == int(weight[tids == tid].sum())
