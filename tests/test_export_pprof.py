"""pprof export: the gzipped profile.proto decoded with the generated classes and checked field by
field against the Profile, pprof's structural rules, reading it back, and (when Go is installed)
``go tool pprof`` reading it."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest
from aether_perf import Frame, InvalidArgument, Profile, ProfileFormatError, ProfileMeta, ThreadInfo
from aether_perf.export import pprof
from aether_perf.export.proto import profile_pb2
from aether_perf.model import FLAG_IDLE

MS = 1_000_000
MAIN, WORKER, QUIET = 4242, 17, 99


def make_profile(mode: str = "wall") -> Profile:
    frames = [
        Frame("main", "app.py", 10, 1),
        Frame("work", "app.py", 20, 15),
        Frame("work", "app.py", 22, 15),  # same function as frame 1, another line
        Frame("parse", "parse.py", 5, 3),
        Frame("<module>", "fib.py", 2, 1),
        Frame("fib", "fib.py", 3, 1),
        Frame("unused", "x.py", 1, 1),  # in no sampled stack
    ]
    stacks = [(0, 1, 3), (0, 2), (4, 5, 5), (), (6,)]
    return Profile(
        frames,
        stacks,
        {
            WORKER: ThreadInfo(WORKER, "worker"),
            MAIN: ThreadInfo(MAIN, "MainThread"),
            QUIET: ThreadInfo(QUIET, "quiet"),
        },
        stack=[0, 1, 0, 1, 3, 0, 1, 2, 2],
        tid=[MAIN, WORKER, MAIN, MAIN, WORKER, MAIN, MAIN, MAIN, WORKER],
        time_ns=[20 * MS, 40 * MS, 40 * MS, 75 * MS, 50 * MS, 60 * MS, 90 * MS, 100 * MS, 99 * MS],
        weight_ns=[20 * MS, 40 * MS, 20 * MS, 15 * MS, 10 * MS, 20 * MS, 15 * MS, 10 * MS, 7],
        flags=[0, FLAG_IDLE, 0, 0, 0, 0, 0, 0, 0],
        meta=ProfileMeta(mode, 0.001, 1_790_000_000.5, 0.1, "3.12.1", 9, 3, "app.py --fast", {"pid": MAIN}),
    )


def unicode_profile() -> Profile:
    frames = [
        Frame("Klass.método 🚀", "/src/模块.py", 7, 5),
        Frame("<lambda>", "", 0, 0),
        Frame("g", "/srv/caf\udce9.py", 4, 4),  # an undecodable file name (surrogateescape)
    ]
    return Profile(
        frames,
        [(1, 0), (1, 2)],
        {1: ThreadInfo(1, 'näme "quoted"')},
        stack=[0, 1, 0],
        tid=[1, 1, 1],
        time_ns=[1, 2, 3],
        weight_ns=[5, 6, 8],
        flags=[0, 0, 0],
        meta=ProfileMeta("cpu", 0.0001, 0.0, 0.0, "3.13.0", 3, 0, "prögram"),
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
        meta=ProfileMeta("cpu", 0.001, 1.0, 0.0, "3.11.7", 0, 0),
    )


def decode(data: bytes) -> profile_pb2.Profile:
    assert data[:2] == b"\x1f\x8b", "pprof files are gzipped"
    message = profile_pb2.Profile()
    message.ParseFromString(gzip.decompress(data))
    return message


def check_structure(message: profile_pb2.Profile) -> None:
    """The rules pprof's own parser (profile.Parse / CheckValid) enforces, and a few more."""
    table = list(message.string_table)
    assert table and table[0] == "", 'string_table[0] must be ""'
    assert len(set(table)) == len(table), "each string is in the table once"

    def string(index: int) -> str:
        assert 0 <= index < len(table), f"string index {index} outside the table"
        return table[index]

    assert len(message.sample_type) >= 1
    for vt in [*message.sample_type, message.period_type]:
        string(vt.type)
        string(vt.unit)
    string(message.default_sample_type)
    for index in message.comment:
        string(index)
    function_ids = [f.id for f in message.function]
    location_ids = [loc.id for loc in message.location]
    for ids in (function_ids, location_ids):
        assert 0 not in ids, "ids are non-zero"
        assert len(set(ids)) == len(ids), "ids are unique"
    for function in message.function:
        for index in (function.name, function.system_name, function.filename):
            string(index)
    for location in message.location:
        assert location.mapping_id == 0  # we write no mappings, so none may be referenced
        assert len(location.line) >= 1
        for line in location.line:
            assert line.function_id in function_ids, "every line refers to an existing function"
    for sample in message.sample:
        assert len(sample.value) == len(message.sample_type), "one value per sample type"
        for location_id in sample.location_id:
            assert location_id in location_ids, "every sample refers to existing locations"
        for label in sample.label:
            string(label.key)
            assert not (label.str and label.num), "a label has a string or a number, not both"
            string(label.str)


def strings_of(message: profile_pb2.Profile) -> list[str]:
    return list(message.string_table)


def expected_samples(profile: Profile) -> dict[tuple[tuple[Frame, ...], int], list[int]]:
    """(root-first frames, tid) -> [count, weight], summed sample by sample in plain Python."""
    totals: dict[tuple[tuple[Frame, ...], int], list[int]] = defaultdict(lambda: [0, 0])
    for stack_id, tid, weight in zip(
        profile.stack.tolist(), profile.tid.tolist(), profile.weight_ns.tolist(), strict=True
    ):
        frames = tuple(profile.frames[i] for i in profile.stacks[stack_id])
        totals[(frames, tid)][0] += 1
        totals[(frames, tid)][1] += weight
    return dict(totals)


def decoded_samples(message: profile_pb2.Profile) -> dict[tuple[tuple[Frame, ...], int], list[int]]:
    """The same mapping rebuilt from the decoded message alone."""
    table = strings_of(message)
    functions = {f.id: f for f in message.function}
    locations = {loc.id: loc for loc in message.location}
    result: dict[tuple[tuple[Frame, ...], int], list[int]] = {}
    for sample in message.sample:
        leaf_first = []
        for location_id in sample.location_id:
            (line,) = locations[location_id].line
            function = functions[line.function_id]
            leaf_first.append(
                Frame(table[function.name], table[function.filename], line.line, function.start_line)
            )
        labels = {table[label.key]: label for label in sample.label}
        tid = labels["thread_id"].num
        key = (tuple(reversed(leaf_first)), tid)
        assert key not in result, "one pprof Sample per distinct (stack, thread)"
        result[key] = list(sample.value)
    return result


# -- the message, field by field -------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["wall", "cpu"])
def test_fields_match_the_profile(mode: str) -> None:
    profile = make_profile(mode)
    message = decode(pprof.to_bytes(profile))
    check_structure(message)
    table = strings_of(message)

    assert [(table[vt.type], table[vt.unit]) for vt in message.sample_type] == [
        ("samples", "count"),
        (mode, "nanoseconds"),
    ]
    assert table[message.default_sample_type] == mode
    assert (table[message.period_type.type], table[message.period_type.unit]) == (mode, "nanoseconds")
    assert message.period == 1_000_000
    assert message.time_nanos == 1_790_000_000_500_000_000
    assert message.duration_nanos == 100_000_000
    assert message.drop_frames == 0 and message.keep_frames == 0

    # One Function per (function, file, first_line) of the sampled frames; ids follow the frames table.
    functions = [
        (f.id, table[f.name], table[f.system_name], table[f.filename], f.start_line) for f in message.function
    ]
    assert functions == [
        (1, "main", "app.py:main", "app.py", 1),
        (2, "work", "app.py:work", "app.py", 15),
        (3, "parse", "parse.py:parse", "parse.py", 3),
        (4, "<module>", "fib.py:<module>", "fib.py", 1),
        (5, "fib", "fib.py:fib", "fib.py", 1),
    ]
    assert "unused" not in table  # a frame in no sampled stack is left out

    # One Location per (function, line), each with a single Line.
    by_id = {f.id: table[f.name] for f in message.function}
    locations = [
        (loc.id, [(by_id[line.function_id], line.line) for line in loc.line]) for loc in message.location
    ]
    assert locations == [
        (1, [("main", 10)]),
        (2, [("work", 20)]),
        (3, [("work", 22)]),
        (4, [("parse", 5)]),
        (5, [("<module>", 2)]),
        (6, [("fib", 3)]),
    ]
    assert all(loc.address == 0 and loc.mapping_id == 0 for loc in message.location)

    # Samples: one per (stack, thread), location ids leaf first, values [count, weight].
    assert decoded_samples(message) == expected_samples(profile)
    first = message.sample[0]  # stack 0 on the main thread sorts first
    assert list(first.location_id) == [4, 2, 1]  # parse <- work:20 <- main
    assert list(first.value) == [3, 60 * MS]
    assert [table[s.label[0].key] for s in message.sample] == ["thread_id"] * len(message.sample)
    for sample in message.sample:
        labels = {table[label.key]: label for label in sample.label}
        assert set(labels) == {"thread_id", "thread_name"}
        tid = labels["thread_id"].num
        assert table[labels["thread_name"].str] == profile.threads[tid].name
        assert labels["thread_id"].str == 0 and labels["thread_name"].num == 0
    # The sample with no Python frames keeps its weight, with no locations.
    empty = [s for s in message.sample if not s.location_id]
    assert [list(s.value) for s in empty] == [[1, 10 * MS]]

    # Values sum to the profile's totals.
    assert sum(s.value[0] for s in message.sample) == len(profile) == 9
    assert sum(s.value[1] for s in message.sample) == profile.total_weight_ns

    comments = [table[i] for i in message.comment]
    assert comments[0].startswith("generator=aether-native")
    assert comments[1:] == ["python_version=3.12.1", "program=app.py --fast", "sample_count=9", "dropped=3"]


def test_one_thread() -> None:
    profile = make_profile()
    message = decode(pprof.to_bytes(profile, thread=WORKER))
    check_structure(message)
    samples = decoded_samples(message)
    assert {tid for _, tid in samples} == {WORKER}
    assert samples == {k: v for k, v in expected_samples(profile).items() if k[1] == WORKER}
    with pytest.raises(InvalidArgument, match="thread 5 is not in the profile"):
        pprof.to_bytes(profile, thread=5)


def test_unicode_and_undecodable_names() -> None:
    profile = unicode_profile()
    message = decode(pprof.to_bytes(profile))
    check_structure(message)
    table = strings_of(message)
    assert "Klass.método 🚀" in table and "/src/模块.py" in table and 'näme "quoted"' in table
    # A lone surrogate cannot be UTF-8: it is written as an escape.
    assert "/srv/caf\\udce9.py" in table
    # system_name always differs from name, so pprof's demangler leaves "<lambda>" alone.
    names = {table[f.name]: table[f.system_name] for f in message.function}
    assert names["<lambda>"] == ":<lambda>"


def test_empty_profile() -> None:
    profile = empty_profile()
    message = decode(pprof.to_bytes(profile))
    check_structure(message)
    assert len(message.sample) == 0 and len(message.function) == 0 and len(message.location) == 0
    back = pprof.from_bytes(pprof.to_bytes(profile))
    assert len(back) == 0 and back.meta.mode == "cpu" and back.meta.start_time == 1.0


def test_deterministic() -> None:
    first = pprof.to_bytes(make_profile())
    assert pprof.to_bytes(make_profile()) == first
    # No timestamp or file name in the gzip header.
    assert first[4:8] == b"\0\0\0\0"


# -- files ---------------------------------------------------------------------------------------


def test_write_to_a_path_and_a_stream(tmp_path: Path) -> None:
    profile = make_profile()
    path = tmp_path / "run.pb.gz"
    pprof.write(profile, path)
    assert path.read_bytes() == pprof.to_bytes(profile)
    assert [p.name for p in tmp_path.iterdir()] == ["run.pb.gz"]  # no temporary left behind
    stream = io.BytesIO()
    pprof.write(profile, stream, thread=MAIN)
    assert stream.getvalue() == pprof.to_bytes(profile, thread=MAIN)


def test_unknown_thread_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "run.pb.gz"
    path.write_bytes(b"old")
    with pytest.raises(InvalidArgument):
        pprof.write(make_profile(), path, thread=12345)
    assert path.read_bytes() == b"old"
    assert len(list(tmp_path.iterdir())) == 1


# -- reading back --------------------------------------------------------------------------------


def per_stack(profile: Profile) -> dict[tuple[tuple[Frame, ...], int], int]:
    return {key: weight for key, (_, weight) in expected_samples(profile).items()}


@pytest.mark.parametrize("factory", [make_profile, unicode_profile, empty_profile])
def test_round_trip(factory: object, tmp_path: Path) -> None:
    profile = factory()  # type: ignore[operator]
    path = tmp_path / "p.pb.gz"
    pprof.write(profile, path)
    back = pprof.read(path)
    if factory is unicode_profile:
        # The undecodable file name comes back escaped; everything else is identical.
        fix = {"/srv/caf\udce9.py": "/srv/caf\\udce9.py"}
        expected = {
            (tuple(Frame(f.function, fix.get(f.file, f.file), f.line, f.first_line) for f in frames), tid): w
            for (frames, tid), w in per_stack(profile).items()
        }
    else:
        expected = per_stack(profile)
    assert per_stack(back) == expected
    assert back.total_weight_ns == profile.total_weight_ns
    sampled = {tid for tid in profile.tid.tolist()}
    assert back.threads == {tid: profile.threads[tid] for tid in sampled}
    meta, original = back.meta, profile.meta
    assert (meta.mode, meta.interval, meta.duration) == (original.mode, original.interval, original.duration)
    assert meta.start_time == pytest.approx(original.start_time, abs=1e-9)
    assert (meta.python_version, meta.program, meta.sample_count, meta.dropped) == (
        original.python_version,
        original.program,
        original.sample_count,
        original.dropped,
    )
    # The frames table holds the sampled frames only.
    used = {profile.frames[i] for s in set(profile.stack.tolist()) for i in profile.stacks[s]}
    if factory is not unicode_profile:
        assert set(back.frames) == used
    # Writing what was read gives the same weights again (one row per pprof Sample: counts become 1).
    again = decoded_samples(decode(pprof.to_bytes(back)))
    assert {k: v[1] for k, v in again.items()} == {
        k: v[1] for k, v in decoded_samples(decode(pprof.to_bytes(profile))).items()
    }


def test_read_from_stream_and_uncompressed() -> None:
    profile = make_profile()
    data = pprof.to_bytes(profile)
    assert per_stack(pprof.read(io.BytesIO(data))) == per_stack(profile)
    raw = gzip.decompress(data)
    assert per_stack(pprof.from_bytes(raw)) == per_stack(profile)


def foreign(**fields: object) -> profile_pb2.Profile:
    """A message another tool could have written: Go-like types and an inlined location."""
    table = ["", "samples", "count", "cpu", "nanoseconds", "f", "g", "a.go", "thread_id"]
    message = profile_pb2.Profile(string_table=table, **fields)  # type: ignore[arg-type]
    return message


def test_read_a_foreign_profile() -> None:
    message = foreign(
        sample_type=[profile_pb2.ValueType(type=1, unit=2), profile_pb2.ValueType(type=3, unit=4)],
        function=[profile_pb2.Function(id=7, name=5, filename=7, start_line=1)],
        period_type=profile_pb2.ValueType(type=3, unit=4),
        period=10_000_000,
    )
    message.function.add(id=9, name=6, filename=7, start_line=20)
    # One location with an inlined call: f (line 3) inlined into g (line 21).
    location = message.location.add(id=100)
    location.line.add(function_id=7, line=3)
    location.line.add(function_id=9, line=21)
    message.sample.add(location_id=[100], value=[2, 20_000_000])
    profile = pprof.from_bytes(gzip.compress(message.SerializeToString()))
    assert profile.meta.mode == "cpu" and profile.meta.interval == 0.01
    assert profile.meta.sample_count == 2
    (stack,) = profile.stacks
    assert [profile.frames[i] for i in stack] == [Frame("g", "a.go", 21, 20), Frame("f", "a.go", 3, 1)]
    assert profile.total_weight_ns == 20_000_000
    assert profile.threads == {0: ThreadInfo(0, "Thread 0")}


BAD = {
    "empty": (b"", "the file is empty"),
    "garbage": (b"\xff\xfe this is not a profile", "not a pprof profile"),
    "truncated gzip": (pprof.GZIP_MAGIC + b"\x08\x00\x00\x00", "corrupt gzip data"),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_unreadable_bytes(name: str, tmp_path: Path) -> None:
    data, reason = BAD[name]
    path = tmp_path / "bad.pb.gz"
    path.write_bytes(data)
    with pytest.raises(ProfileFormatError) as info:
        pprof.read(path)
    message = str(info.value)
    assert message.startswith(str(path)) and reason in message and "\n" not in message


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda m: m.string_table.__setitem__(0, "x"), 'string_table[0] must be ""'),
        (lambda m: m.sample.add(location_id=[999], value=[1, 1]), "refers to location 999"),
        (lambda m: m.sample.add(location_id=[], value=[1]), "has 1 values for 2 sample types"),
        (lambda m: m.location.add(id=1), "two locations have id 1"),
        (lambda m: m.function.add(id=0), "a function has id 0"),
        (lambda m: m.location.add(id=50).line.add(function_id=77), "refers to function 77"),
        (lambda m: m.sample.add(value=[1, -5]), "outside 0..2**63"),
        (lambda m: setattr(m.sample_type[1], "unit", 2), "no sample type counts time"),
        (lambda m: setattr(m.function[0], "name", 10_000), "outside the"),
    ],
)
def test_malformed_messages(build: object, reason: str) -> None:
    message = pprof.to_message(make_profile())
    build(message)  # type: ignore[operator]
    with pytest.raises(ProfileFormatError, match=r"^<bytes>: ") as info:
        pprof.from_bytes(message.SerializeToString())
    assert reason in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileFormatError, match="no such file"):
        pprof.read(tmp_path / "nope.pb.gz")


# -- go tool pprof -------------------------------------------------------------------------------


def go_pprof(*args: str) -> str:
    env = dict(os.environ)
    env.setdefault("HOME", "/tmp")
    result = subprocess.run(
        ["go", "tool", "pprof", *args], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.skipif(shutil.which("go") is None, reason="go (Debian golang-go) is not installed")
def test_go_tool_pprof_reads_it(tmp_path: Path) -> None:
    profile = make_profile("cpu")
    path = tmp_path / "cpu.pb.gz"
    pprof.write(profile, path)
    raw = go_pprof("-raw", str(path))
    assert "samples/count cpu/nanoseconds[dflt]" in raw
    assert "PeriodType: cpu nanoseconds" in raw and "Period: 1000000" in raw
    assert "thread_name:[MainThread]" in raw and "thread_id:[4242]" in raw
    # -top: flat and cumulative time per function; <module> keeps its angle brackets.
    top = go_pprof("-top", "-unit=ms", "-nodecount=20", str(path))
    assert "Type: cpu" in top and "Duration: 100ms" in top
    rows = {line.split()[-1]: line.split() for line in top.splitlines() if "%" in line and "ms" in line}
    assert rows["parse"][0] == "60ms"  # flat
    assert rows["work"][0] == "70ms"  # flat: 40 + 15 + 15 at work:22
    assert rows["main"][3] == "130ms"  # cumulative
    assert rows["<module>"][3].startswith("10")  # cumulative 10ms + 7ns
    traces = go_pprof("-traces", str(path))
    assert "thread_name:  worker" in traces
