"""HeapSnapshot: size classes, hot spots, compare_to, sampled estimates, files and exports.

Ground truth is a hand-built snapshot whose every number is known (see ``ROWS``).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from aether_perf.errors import InvalidArgument, ProfileFormatError
from aether_perf.model import (
    Frame,
    HeapMeta,
    HeapSnapshot,
    Profile,
    ProfileMeta,
    ThreadInfo,
    load,
    load_heap,
)
from aether_perf.model.heap import NO_FRAMES

SCHEMA = json.loads((Path(__file__).parent / "data" / "speedscope-file-format-schema.json").read_text())
KIB = 1024
MIB = 1024 * 1024

FRAMES = [
    Frame("<module>", "app.py", 40, 1),  # 0
    Frame("main", "app.py", 30, 28),  # 1
    Frame("leak", "app.py", 12, 10),  # 2
    Frame("churn", "work.py", 5, 3),  # 3
    Frame("helper", "work.py", 20, 18),  # 4
    Frame("leak", "app.py", 14, 10),  # 5
]
STACKS = [(0, 1, 2), (0, 1, 3), (0, 1, 3, 4), (), (0, 1, 5), (1, 2)]
# (stack, size, blocks, tid, first time_ns, time step)
ROWS = [
    (0, 1000, 10, 1, 1000, 100),  # medium, 10,000 B
    (1, 32, 100, 2, 0, 1),  # small, 3,200 B
    (1, 64, 2, 2, 500, 1),  # small (upper bound), 128 B
    (2, 2048, 3, 1, 2000, 10),  # large, 6,144 B
    (2, 65, 1, 1, 3000, 0),  # medium (lower bound), 65 B
    (3, 1025, 1, 2, 4000, 0),  # large (lower bound), no Python frames
    (4, 100, 5, 1, 5000, 1),  # medium, 500 B
    (5, 200, 1, 2, 6000, 0),  # medium, 200 B, same innermost line as stack 0
]
TOTAL_BYTES = 10_000 + 3_200 + 128 + 6_144 + 65 + 1_025 + 500 + 200
TOTAL_BLOCKS = 10 + 100 + 2 + 3 + 1 + 1 + 5 + 1


def make_meta(mode: str = "exact", sample_rate: int = 0, **extra: Any) -> HeapMeta:
    return HeapMeta(
        mode=mode,
        sample_rate=sample_rate,
        start_time=1_700_000_000.5,
        duration=2.25,
        python_version="3.12.1",
        native=False,
        allocated_bytes=5_000_000,
        freed_bytes=5_000_000 - TOTAL_BYTES,
        allocations=40_000,
        frees=40_000 - TOTAL_BLOCKS,
        peak_bytes=3_000_000,
        current_bytes=TOTAL_BYTES,
        extra=dict(extra),
    )


def build(
    rows: list[tuple[int, int, int, int, int, int]] = ROWS,
    frames: list[Frame] = FRAMES,
    stacks: list[tuple[int, ...]] = STACKS,
    **extra: Any,
) -> HeapSnapshot:
    stack, size, tid, time_ns = [], [], [], []
    for stack_id, block, blocks, thread, start, step in rows:
        for i in range(blocks):
            stack.append(stack_id)
            size.append(block)
            tid.append(thread)
            time_ns.append(start + i * step)
    return HeapSnapshot(
        frames,
        stacks,
        stack=np.array(stack, dtype=np.int32),
        size=np.array(size, dtype=np.int64),
        bytes=np.array(size, dtype=np.int64),
        count=np.ones(len(stack)),
        tid=np.array(tid, dtype=np.int64),
        time_ns=np.array(time_ns, dtype=np.int64),
        meta=make_meta(**extra),
    )


RATE = 512 * KIB
# Sampled rows: (stack, real size, bytes estimate, count estimate)
SAMPLED = [
    (0, 100, 524_338, 5_243.38),
    (0, 40, 524_308, 13_107.7),
    (2, 2_000_000, 2_000_000, 1.0),
    (1, 1000, 524_788, 524.788),
]


def build_sampled() -> HeapSnapshot:
    return HeapSnapshot(
        FRAMES,
        STACKS,
        stack=[r[0] for r in SAMPLED],
        size=[r[1] for r in SAMPLED],
        bytes=[r[2] for r in SAMPLED],
        count=[r[3] for r in SAMPLED],
        tid=[7] * len(SAMPLED),
        time_ns=[10, 20, 30, 40],
        meta=make_meta("sampled", RATE, program="x.py"),
    )


# -- totals and size classes -----------------------------------------------------------------------


def test_totals_and_size_classes_are_exact() -> None:
    snap = build()
    assert len(snap) == TOTAL_BLOCKS
    assert snap.total_bytes == TOTAL_BYTES == 21_262
    assert snap.total_count == TOTAL_BLOCKS
    s = snap.summary()
    assert (s.total_bytes, s.total_objects) == (TOTAL_BYTES, TOTAL_BLOCKS)
    assert (s.small_count, s.small_bytes) == (102, 3_328)  # 100 x 32 + 2 x 64
    assert (s.medium_count, s.medium_bytes) == (17, 10_000 + 65 + 500 + 200)
    assert (s.large_count, s.large_bytes) == (4, 6_144 + 1_025)
    assert s.small_bytes + s.medium_bytes + s.large_bytes == s.total_bytes


def test_empty_snapshot() -> None:
    snap = HeapSnapshot([], [], stack=[], size=[], bytes=[], count=[], tid=[], time_ns=[], meta=make_meta())
    assert len(snap) == 0 and snap.total_bytes == 0 and snap.total_count == 0
    assert snap.summary().total_objects == 0
    assert snap.hot_spots() == []
    assert snap.compare_to(snap) == []


# -- hot spots ---------------------------------------------------------------------------------------


def test_hot_spots_by_stack_bytes() -> None:
    spots = build().hot_spots(10)
    assert [s.bytes for s in spots] == [10_000, 6_209, 3_328, 1_025, 500, 200]
    assert [s.count for s in spots] == [10, 4, 102, 1, 5, 1]
    first = spots[0]
    assert first.frames == (FRAMES[0], FRAMES[1], FRAMES[2])
    assert (first.file, first.line) == ("app.py", 12)
    assert first.pct == pytest.approx(100 * 10_000 / TOTAL_BYTES)
    assert spots[3].location == NO_FRAMES and spots[3].frames == ()
    assert sum(s.pct for s in spots) == pytest.approx(100.0)
    assert len(build().hot_spots(2)) == 2


def test_hot_spots_by_count() -> None:
    spots = build().hot_spots(3, by="count")
    assert [(s.count, s.bytes) for s in spots] == [(102, 3_328), (10, 10_000), (5, 500)]


def test_hot_spots_by_line_merges_stacks_with_the_same_innermost_line() -> None:
    spots = build().hot_spots(None, key="line")
    assert [(s.location, s.bytes, s.count) for s in spots] == [
        ("app.py:12", 10_200, 11),
        ("work.py:20", 6_209, 4),
        ("work.py:5", 3_328, 102),
        (NO_FRAMES, 1_025, 1),
        ("app.py:14", 500, 5),
    ]
    assert spots[0].frames == () and (spots[0].file, spots[0].line) == ("app.py", 12)


def test_hot_spots_by_file() -> None:
    spots = build().hot_spots(key="file")
    assert [(s.location, s.bytes, s.count) for s in spots] == [
        ("app.py", 10_700, 16),
        ("work.py", 9_537, 106),
        (NO_FRAMES, 1_025, 1),
    ]
    assert spots[0].pct == pytest.approx(100 * 10_700 / TOTAL_BYTES)


def test_hot_spots_bad_arguments() -> None:
    snap = build()
    with pytest.raises(InvalidArgument, match="key must be"):
        snap.hot_spots(key="function")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="by must be"):
        snap.hot_spots(by="size")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="n must be"):
        snap.hot_spots(-1)


# -- compare_to ----------------------------------------------------------------------------------------


def _two_snapshots() -> tuple[HeapSnapshot, HeapSnapshot]:
    a = Frame("grow", "g.py", 3, 1)
    b = Frame("shrink", "s.py", 7, 5)
    c = Frame("fresh", "n.py", 1, 1)
    d = Frame("gone", "o.py", 2, 1)
    older = build(
        rows=[(0, KIB, 1, 1, 0, 0), (1, KIB, 200, 1, 0, 0), (2, 20, 5, 1, 0, 0)],
        frames=[a, b, d],
        stacks=[(0,), (1,), (2,)],
    )
    # The newer snapshot orders its tables differently: groups match by content.
    newer = build(
        rows=[(1, KIB, 1024 + 1, 1, 0, 0), (0, KIB, 100, 1, 0, 0), (2, 10, 10, 1, 0, 0)],
        frames=[c, b, a],
        stacks=[(1,), (2,), (0,)],
    )
    return older, newer


def test_compare_to_finds_known_growth() -> None:
    older, newer = _two_snapshots()
    rows = newer.compare_to(older)
    assert [(g.location, g.delta, g.count_delta) for g in rows] == [
        ("grow (g.py:3)", MIB, 1024),
        ("fresh (n.py:1)", 100, 10),
        ("gone (o.py:2)", -100, -5),
        ("shrink (s.py:7)", -100 * KIB, -100),
    ]
    grow = rows[0]
    assert (grow.bytes_before, grow.bytes_after) == (KIB, MIB + KIB)
    assert (grow.count_before, grow.count_after) == (1, 1025)
    assert [g.status for g in rows] == ["grown", "new", "freed", "shrunk"]
    assert newer.compare_to(newer)[0].status == "unchanged"


def test_compare_to_by_file_and_line() -> None:
    older, newer = _two_snapshots()
    by_file = {g.location: g.delta for g in newer.compare_to(older, key="file")}
    assert by_file == {"g.py": MIB, "n.py": 100, "o.py": -100, "s.py": -100 * KIB}
    by_line = newer.compare_to(older, key="line")
    assert by_line[0].location == "g.py:3" and by_line[0].delta == MIB
    assert by_line[-1].location == "s.py:7" and by_line[-1].delta == -100 * KIB


def test_compare_to_with_itself_and_bad_input() -> None:
    snap = build()
    assert all(g.delta == 0 and g.count_delta == 0 for g in snap.compare_to(build()))
    with pytest.raises(InvalidArgument):
        snap.compare_to("old")  # type: ignore[arg-type]


# -- sampled mode ------------------------------------------------------------------------------------


def test_sampled_rows_sum_their_estimates() -> None:
    snap = build_sampled()
    assert snap.total_bytes == 524_338 + 524_308 + 2_000_000 + 524_788
    assert snap.total_count == pytest.approx(5_243.38 + 13_107.7 + 1.0 + 524.788)
    s = snap.summary()
    assert (s.small_count, s.small_bytes) == (13_108, 524_308)  # by real size 40
    assert (s.medium_count, s.medium_bytes) == (round(5_243.38 + 524.788), 524_338 + 524_788)
    assert (s.large_count, s.large_bytes) == (1, 2_000_000)
    assert s.total_objects == round(snap.total_count)
    spots = snap.hot_spots()
    assert [(s.bytes, s.count) for s in spots] == [(2_000_000, 1), (1_048_646, 18_351), (524_788, 525)]


def test_exact_rows_must_be_exact_and_meta_is_checked() -> None:
    snap = build()
    kwargs: dict[str, Any] = {name: getattr(snap, name) for name in HeapSnapshot.COLUMNS}
    with pytest.raises(InvalidArgument, match="bytes must equal its size"):
        HeapSnapshot(FRAMES, STACKS, **{**kwargs, "bytes": snap.bytes * 2}, meta=make_meta())
    with pytest.raises(InvalidArgument, match="count must be 1"):
        HeapSnapshot(FRAMES, STACKS, **{**kwargs, "count": snap.count * 2}, meta=make_meta())
    with pytest.raises(InvalidArgument, match="differ in length"):
        HeapSnapshot(FRAMES, STACKS, **{**kwargs, "tid": snap.tid[:-1]}, meta=make_meta())
    with pytest.raises(InvalidArgument, match="outside the 6-stack table"):
        HeapSnapshot(FRAMES, STACKS, **{**kwargs, "stack": snap.stack + 3}, meta=make_meta())
    with pytest.raises(InvalidArgument, match=r"meta\.mode"):
        HeapSnapshot(FRAMES, STACKS, **kwargs, meta=make_meta("fast"))
    with pytest.raises(InvalidArgument, match="sample_rate must be positive"):
        HeapSnapshot(FRAMES, STACKS, **kwargs, meta=make_meta("sampled", 0))
    with pytest.raises(InvalidArgument, match="frame outside"):
        HeapSnapshot(
            FRAMES, [(0, 99)], **{**kwargs, "stack": np.zeros(len(snap), np.int32)}, meta=make_meta()
        )
    assert not snap.size.flags.writeable


def test_filter_by_thread_and_time() -> None:
    snap = build()
    one = snap.filter(thread=1)
    assert len(one) == 10 + 3 + 1 + 5 and set(one.tid.tolist()) == {1}
    assert one.total_bytes == 10_000 + 6_144 + 65 + 500
    late = snap.filter(since_ns=4000)
    assert late.total_bytes == 1_025 + 500 + 200
    both = snap.filter(thread=2, since_ns=4000)
    assert both.total_bytes == 1_025 + 200
    assert snap.filter(thread=12345).total_bytes == 0
    assert one.meta == snap.meta and one.frames == snap.frames


# -- files ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("maker", [build, build_sampled])
def test_save_load_round_trip(tmp_path: Path, maker: Any) -> None:
    snap = maker()
    path = tmp_path / "mem.aprof"
    snap.save(path)
    again = load_heap(path)
    assert again == snap
    assert HeapSnapshot.load(str(path)) == snap
    for name in HeapSnapshot.COLUMNS:
        assert np.array_equal(getattr(again, name), getattr(snap, name)), name
        assert getattr(again, name).dtype == getattr(snap, name).dtype, name
    assert again.meta == snap.meta
    assert isinstance(again.meta.start_time, float) and isinstance(again.meta.native, bool)
    assert again.stacks == snap.stacks and again.frames == snap.frames


def test_save_refuses_non_json_extra(tmp_path: Path) -> None:
    snap = build(weird=(1, 2))
    with pytest.raises(InvalidArgument, match="JSON"):
        snap.save(tmp_path / "x.aprof")
    assert not (tmp_path / "x.aprof").exists()


def _profile() -> Profile:
    meta = ProfileMeta("cpu", 0.001, 0.0, 1.0, "3.12", 1, 0)
    return Profile(
        FRAMES,
        STACKS,
        {1: ThreadInfo(1, "MainThread")},
        stack=[0],
        tid=[1],
        time_ns=[0],
        weight_ns=[1000],
        flags=[0],
        meta=meta,
    )


def _one_line_error(call: Any, path: Path) -> str:
    with pytest.raises(ProfileFormatError) as info:
        call(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_wrong_kind_gives_a_clear_error(tmp_path: Path) -> None:
    profile_path = tmp_path / "cpu.aprof"
    _profile().save(profile_path)
    assert "'profile' document, not a heap snapshot" in _one_line_error(load_heap, profile_path)
    heap_path = tmp_path / "mem.aprof"
    build().save(heap_path)
    assert "'heap' document, not a profile" in _one_line_error(load, heap_path)


def test_corrupt_files_give_one_line_errors(tmp_path: Path) -> None:
    path = tmp_path / "mem.aprof"
    build().save(path)
    data = path.read_bytes()
    flipped = bytearray(data)
    flipped[-5] ^= 0xFF
    cases = {
        "checksum": bytes(flipped),
        "truncated": data[: len(data) // 2],
        "not an aether file": b"hello world, not a snapshot",
        "empty": b"",
    }
    for expected, content in cases.items():
        bad = tmp_path / f"bad-{expected.replace(' ', '-')}.aprof"
        bad.write_bytes(content)
        assert expected in _one_line_error(load_heap, bad)
    assert "no such file" in _one_line_error(load_heap, tmp_path / "missing.aprof")


def test_malformed_heap_document(tmp_path: Path) -> None:
    from aether_perf.model.fileformat import write_document
    from aether_perf.model.heap_codec import heap_document

    header, columns = heap_document(build())
    del columns["count"]
    path = tmp_path / "m.aprof"
    write_document(path, "heap", header, columns)
    assert "malformed heap snapshot: missing columns count" in _one_line_error(load_heap, path)
    header, columns = heap_document(build())
    header["meta"]["mode"] = "bogus"
    write_document(path, "heap", header, columns)
    assert "malformed heap snapshot" in _one_line_error(load_heap, path)


# -- exports -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("maker", [build, build_sampled])
def test_speedscope_is_schema_valid_with_byte_totals(tmp_path: Path, maker: Any) -> None:
    snap = maker()
    path = tmp_path / "mem.speedscope.json"
    snap.to_speedscope(path)
    document = json.loads(path.read_text())
    errors = list(jsonschema.Draft7Validator(SCHEMA).iter_errors(document))
    assert not errors, errors[0].message
    (profile,) = document["profiles"]
    assert profile["type"] == "sampled" and profile["unit"] == "bytes"
    assert sum(profile["weights"]) == profile["endValue"] == snap.total_bytes
    by_stack = {tuple(s): w for s, w in zip(profile["samples"], profile["weights"], strict=True)}
    expected = {stack: spot.bytes for stack, spot in _stack_spots(snap).items()}
    assert by_stack == expected
    assert [f["name"] for f in document["shared"]["frames"]] == [f.function for f in FRAMES]


def _stack_spots(snap: HeapSnapshot) -> dict[tuple[int, ...], Any]:
    result = {}
    for spot in snap.hot_spots(None):
        result[tuple(FRAMES.index(f) for f in spot.frames)] = spot
    return result


def test_speedscope_to_a_stream() -> None:
    buffer = io.StringIO()
    build().to_speedscope(buffer, name="heap")
    document = json.loads(buffer.getvalue())
    assert document["name"] == "heap"
    assert document["profiles"][0]["endValue"] == TOTAL_BYTES


def test_collapsed_stacks(tmp_path: Path) -> None:
    path = tmp_path / "mem.folded"
    build().to_collapsed(path)
    lines = path.read_text().splitlines()
    assert "<module> (app.py:40);main (app.py:30);leak (app.py:12) 10000" in lines
    assert f"{NO_FRAMES} 1025" in lines
    assert sum(int(line.rsplit(" ", 1)[1]) for line in lines) == TOTAL_BYTES
    buffer = io.StringIO()
    build().to_collapsed(buffer, value="count", lines=False)
    counts = dict(line.rsplit(" ", 1) for line in buffer.getvalue().splitlines())
    assert counts["<module> (app.py);main (app.py);churn (work.py)"] == "102"
    # Stacks 0 and 4 differ only in a line: without lines they merge.
    assert counts["<module> (app.py);main (app.py);leak (app.py)"] == "15"
