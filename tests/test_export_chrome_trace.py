"""Chrome Trace Event export: the structure Perfetto and chrome://tracing need (a schema for the
events we write, nesting per track, ordering), exact flame-chart events for a hand-built profile,
spans and samples on one time axis, task tracks, reading back, and clear errors."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from aether_perf import Frame, InvalidArgument, Profile, ProfileFormatError, ProfileMeta, ThreadInfo
from aether_perf.export import chrome_trace
from aether_perf.export.chrome_trace import SYNTHETIC_TID_BASE
from aether_perf.instrumentation import instrument, profile_scope, reset, trace
from aether_perf.model import FLAG_IDLE, Span

MS = 1_000_000
MAIN, WORKER = 4242, 17
START = 5_000_000_000_000  # the profile's time zero on CLOCK_MONOTONIC

#: The subset of the Trace Event Format this exporter writes.
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["traceEvents", "displayTimeUnit"],
    "properties": {
        "traceEvents": {
            "type": "array",
            "items": {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["name", "ph", "pid", "tid", "args"],
                        "properties": {
                            "ph": {"const": "M"},
                            "name": {"enum": ["process_name", "thread_name", "thread_sort_index"]},
                            "pid": {"type": "integer"},
                            "tid": {"type": "integer"},
                            "args": {
                                "type": "object",
                                "oneOf": [
                                    {"required": ["name"], "properties": {"name": {"type": "string"}}},
                                    {
                                        "required": ["sort_index"],
                                        "properties": {"sort_index": {"type": "integer"}},
                                    },
                                ],
                            },
                        },
                    },
                    {
                        "type": "object",
                        "required": ["name", "cat", "ph", "ts", "dur", "pid", "tid", "args"],
                        "properties": {
                            "ph": {"const": "X"},
                            "name": {"type": "string"},
                            "cat": {"type": "string", "minLength": 1},
                            "ts": {"type": "number", "minimum": 0},
                            "dur": {"type": "number", "minimum": 0},
                            "pid": {"type": "integer"},
                            "tid": {"type": "integer"},
                            "args": {"type": "object"},
                        },
                    },
                ]
            },
        },
        "displayTimeUnit": {"enum": ["ms", "ns"]},
        "otherData": {"type": "object"},
    },
}


def ns(value: float) -> int:
    """A ts or dur (microseconds) as Perfetto reads it: rounded to the nanosecond."""
    return round(value * 1000)


def validate(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Check a trace structurally and semantically; return its X events."""
    jsonschema.validate(document, SCHEMA)
    events = document["traceEvents"]
    metadata = [e for e in events if e["ph"] == "M"]
    complete = [e for e in events if e["ph"] == "X"]
    assert events[: len(metadata)] == metadata, "metadata events come first"
    named_threads = {(e["pid"], e["tid"]) for e in metadata if e["name"] == "thread_name"}
    named_processes = {e["pid"] for e in metadata if e["name"] == "process_name"}
    assert len(named_threads) == len([e for e in metadata if e["name"] == "thread_name"]), "one name per tid"
    sort_indexes = [e["args"]["sort_index"] for e in metadata if e["name"] == "thread_sort_index"]
    assert sorted(sort_indexes) == list(range(len(sort_indexes)))
    # ts never goes back in file order; among equal ts the longer (outer) event comes first.
    for before, after in itertools.pairwise(complete):
        assert ns(before["ts"]) <= ns(after["ts"])
        same_track = (before["pid"], before["tid"]) == (after["pid"], after["tid"])
        if same_track and ns(before["ts"]) == ns(after["ts"]):
            assert ns(before["dur"]) >= ns(after["dur"])
    tracks: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for event in complete:
        assert (event["pid"], event["tid"]) in named_threads, f"tid {event['tid']} has no thread_name"
        assert event["pid"] in named_processes
        tracks[(event["pid"], event["tid"])].append(event)
    for key, track in tracks.items():
        assert not nesting_errors(track), (key, nesting_errors(track)[:3])
    return complete


def nesting_errors(events: list[dict[str, Any]]) -> list[str]:
    """X events on one track: each one either contains the next or ends before it (no partial
    overlap), in integer nanoseconds as Perfetto computes them."""
    errors = []
    ordered = sorted(events, key=lambda e: (ns(e["ts"]), -ns(e["dur"])))
    stack: list[tuple[int, str]] = []  # (end, name) of the open events
    for event in ordered:
        start, end = ns(event["ts"]), ns(event["ts"]) + ns(event["dur"])
        while stack and stack[-1][0] <= start:
            stack.pop()
        if stack and end > stack[-1][0]:
            errors.append(f"{event['name']} [{start}, {end}] overlaps {stack[-1][1]} (ends {stack[-1][0]})")
        stack.append((end, event["name"]))
    return errors


def intervals(events: list[dict[str, Any]], tid: int, origin_shift: int = 0) -> list[tuple[str, int, int]]:
    """(name, start ns, end ns) of a track's X events, in file order."""
    return [
        (e["name"], ns(e["ts"]) - origin_shift, ns(e["ts"]) + ns(e["dur"]) - origin_shift)
        for e in events
        if e["tid"] == tid
    ]


def thread_names(document: dict[str, Any]) -> dict[int, str]:
    return {e["tid"]: e["args"]["name"] for e in document["traceEvents"] if e.get("name") == "thread_name"}


# -- a hand-built profile ------------------------------------------------------------------------


def make_profile(extra: dict[str, Any] | None = None) -> Profile:
    """MAIN, 10 ms per sample: main>a, main>a (line 2), main>b, main>b>c, main>a, (no Python), main>f>f.
    WORKER: a gap after one sample (cpu-style), then two samples of w (one idle)."""
    frames = [
        Frame("main", "app.py", 10, 1),  # 0
        Frame("a", "app.py", 21, 20),  # 1
        Frame("a", "app.py", 22, 20),  # 2: a at another line, the same function
        Frame("b", "app.py", 31, 30),  # 3
        Frame("c", "lib.py", 5, 4),  # 4
        Frame("f", "rec.py", 2, 1),  # 5
        Frame("w", "work.py", 9, 8),  # 6
    ]
    stacks = [(0, 1), (0, 2), (0, 3), (0, 3, 4), (), (0, 5, 5), (6,)]
    main_samples = [0, 1, 2, 3, 0, 4, 5, 5]
    main_times = [10, 20, 30, 40, 50, 60, 70, 80]
    worker_samples = [6, 6, 6]
    worker_times = [5, 50, 58]
    worker_weights = [5, 3, 8]  # the second sample's 3 ms start at 47; the third's 8 ms clip at 50
    return Profile(
        frames,
        stacks,
        {MAIN: ThreadInfo(MAIN, "MainThread"), WORKER: ThreadInfo(WORKER, "worker")},
        stack=main_samples + worker_samples,
        tid=[MAIN] * 8 + [WORKER] * 3,
        time_ns=[t * MS for t in main_times + worker_times],
        weight_ns=[10 * MS] * 8 + [w * MS for w in worker_weights],
        flags=[0] * 8 + [0, FLAG_IDLE, 0],
        meta=ProfileMeta("wall", 0.01, 1_790_000_000.0, 0.08, "3.12.1", 11, 0, "app.py", extra or {}),
    )


def test_profile_becomes_a_flame_chart_whose_events_span_exactly_their_samples() -> None:
    profile = make_profile({"start_monotonic_ns": START, "pid": 99})
    document = chrome_trace.to_json(profile=profile)
    events = validate(document)
    assert {e["cat"] for e in events} == {"sample"}
    assert {e["pid"] for e in events} == {99}
    assert thread_names(document) == {MAIN: "MainThread", WORKER: "worker"}
    # ts 0 is the profile's start (nothing earlier in the file).
    assert document["otherData"]["origin_monotonic_ns"] == START
    main = sorted(intervals(events, MAIN), key=lambda e: (e[1], -e[2]))
    assert main == [
        ("main", 0, 50 * MS),  # samples 1-5: main stays on the stack from 0 to 50 ms
        ("a", 0, 20 * MS),  # a at lines 21 and 22: one function, one event
        ("b", 20 * MS, 40 * MS),
        ("c", 30 * MS, 40 * MS),
        ("a", 40 * MS, 50 * MS),  # a again after b: a new event
        ("main", 60 * MS, 80 * MS),  # after the sample without Python frames
        ("f", 60 * MS, 80 * MS),  # recursion: one event per level
        ("f", 60 * MS, 80 * MS),
    ]
    # Parent before child when they start and end together (Perfetto keeps the file order).
    f_events = [e for e in events if e["tid"] == MAIN and ns(e["ts"]) == 60 * MS]
    assert [e["name"] for e in f_events] == ["main", "f", "f"]
    assert intervals(events, WORKER) == [("w", 0, 58 * MS)]  # 0..5, gap kept inside, 47..50, 50..58
    a_event = next(e for e in events if e["name"] == "a")
    assert a_event["args"] == {"file": "app.py", "first_line": 20}


def test_profile_without_a_monotonic_start_is_written_on_its_own_time() -> None:
    document = chrome_trace.to_json(profile=make_profile())
    events = validate(document)
    assert intervals(events, MAIN)[0] == ("main", 0, 50 * MS)
    with pytest.raises(InvalidArgument, match="start_monotonic_ns"):
        chrome_trace.to_json(profile=make_profile(), spans=[Span("s", MAIN, 0, 1)])


def test_spans_and_samples_share_one_time_axis() -> None:
    profile = make_profile({"start_monotonic_ns": START})
    spans = [
        Span("request", MAIN, START - 5 * MS, START + 45 * MS, 0, f"thread {MAIN}", "scope"),
        Span("db", MAIN, START + 20 * MS, START + 40 * MS, 1, f"thread {MAIN}", "function"),
        Span("elsewhere", 555, START + 1 * MS, START + 2 * MS, 0, "thread 555"),
        Span("job", MAIN, START + 30 * MS, START + 60 * MS, 0, "Task-7"),
    ]
    document = chrome_trace.to_json(profile=profile, spans=spans, name="svc", pid=1)
    events = validate(document)
    # The earliest instant in the file (the request span, 5 ms before the profile) is ts 0.
    assert document["otherData"]["origin_monotonic_ns"] == START - 5 * MS
    names = thread_names(document)
    by_name = {v: k for k, v in names.items()}
    # MAIN has samples, so its spans go on a synthetic track beside it; a thread with spans only
    # keeps its tid; the task has its own track.
    assert names[MAIN] == "MainThread"
    span_track, task_track = by_name["MainThread spans"], by_name["Task-7"]
    assert span_track >= SYNTHETIC_TID_BASE and task_track >= SYNTHETIC_TID_BASE
    assert names[555] == "thread 555"
    shift = 5 * MS  # profile time x is at ts x + 5 ms
    assert intervals(events, span_track, shift) == [("request", -5 * MS, 45 * MS), ("db", 20 * MS, 40 * MS)]
    assert intervals(events, task_track, shift) == [("job", 30 * MS, 60 * MS)]
    # b ran from 20 to 40 ms of profile time, exactly when the db span was open.
    b = next(e for e in events if e["name"] == "b")
    db = next(e for e in events if e["name"] == "db")
    assert (ns(b["ts"]), ns(b["dur"])) == (ns(db["ts"]), ns(db["dur"]))
    process = next(e for e in document["traceEvents"] if e["name"] == "process_name")
    assert process["args"]["name"] == "svc" and {e["pid"] for e in events} == {1}
    order = [e["tid"] for e in document["traceEvents"] if e["name"] == "thread_sort_index"]
    assert order == [MAIN, span_track, task_track, WORKER, 555]  # each thread's tracks together


def test_traced_threads_and_tasks_validate_and_read_back(tmp_path: Path) -> None:
    reset()

    @instrument(name="work")
    def work() -> None:
        time.sleep(0.002)

    @instrument(name="step")
    async def step() -> None:
        await asyncio.sleep(0.003)

    async def job() -> None:
        for _ in range(3):
            with profile_scope("job"):
                await step()

    async def main() -> None:
        await asyncio.gather(
            asyncio.create_task(job(), name="alpha"), asyncio.create_task(job(), name="beta")
        )

    def thread_body() -> None:
        with profile_scope("thread.outer"):
            work()
            work()

    with trace() as t:
        threads = [threading.Thread(target=thread_body) for _ in range(3)]
        for thread in threads:
            thread.start()
        thread_body()
        for thread in threads:
            thread.join()
        asyncio.run(main())
    path = tmp_path / "trace.json"
    chrome_trace.write(path, spans=t.spans)
    document = chrome_trace.read(path)
    events = validate(document)
    assert len(events) == len(t.spans)
    names = thread_names(document)
    alpha = next(tid for tid, name in names.items() if name == "alpha")
    beta = next(tid for tid, name in names.items() if name == "beta")
    for tid in (alpha, beta):
        assert tid >= SYNTHETIC_TID_BASE
        track = intervals(events, tid)
        assert [name for name, _, _ in track] == ["job", "step"] * 3
    thread_tids = {s.tid for s in t.spans if s.name == "thread.outer"}
    assert len(thread_tids) == 4
    for tid in thread_tids:
        assert names[tid] == f"thread {tid}"  # spans of a thread stay on its real tid
        assert [name for name, _, _ in intervals(events, tid)] == ["thread.outer", "work", "work"]
    assert chrome_trace.read_spans(path) == t.spans  # nanosecond-exact round trip
    assert json.loads(path.read_text())["displayTimeUnit"] == "ms"


def test_real_sampler_profile_lines_up_with_instrumented_spans() -> None:
    """Ground truth for the shared time axis: the samples taken while an instrumented function ran
    (as the sampler saw it) fall inside that function's span."""
    aether_native = pytest.importorskip("aether_native")

    @instrument(name="busy")
    def busy(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(200):
                pass

    with aether_native.Sampler("1ms", mode="wall") as sampler, trace() as t:
        time.sleep(0.05)
        busy(0.15)
        time.sleep(0.05)
    profile = sampler.profile
    assert profile is not None
    (span,) = [s for s in t.spans if s.name == "busy"]
    start_ns = profile.meta.extra["start_monotonic_ns"]
    busy_stacks = {
        i
        for i, st in enumerate(profile.stacks)
        if any(profile.frames[f].function.endswith("<locals>.busy") for f in st)
    }
    in_busy = np.isin(profile.stack, list(busy_stacks))
    # 150 at 1 kHz; on a machine busy with other processes far fewer, but some.
    assert in_busy.sum() >= 3, "the sampler saw busy()"
    # When each sample was taken, on CLOCK_MONOTONIC: inside the span (give or take the delivery
    # of the signal, which is what the tolerance allows for).
    taken = start_ns + profile.time_ns[in_busy]
    tolerance = 5 * MS
    assert span.start_ns - tolerance <= int(taken.min()) and int(taken.max()) <= span.end_ns + tolerance
    # And the main thread's samples outside the span (it slept 50 ms either side) are not in busy().
    main = profile.tid == threading.get_native_id()
    outside = (start_ns + profile.time_ns < span.start_ns - tolerance) | (
        start_ns + profile.time_ns > span.end_ns + tolerance
    )
    assert (main & outside).any() and not (in_busy & main & outside).any()

    # In the Chrome trace the same holds for the flame-chart events of busy(): each starts at most
    # one sample's weight before the span and ends (when its last sample was taken) inside it.
    document = chrome_trace.to_json(profile=profile, spans=t.spans)
    events = validate(document)
    origin = document["otherData"]["origin_monotonic_ns"]
    sampled = [e for e in events if e["cat"] == "sample" and e["name"].endswith("<locals>.busy")]
    assert sampled
    longest_weight = int(profile.weight_ns[in_busy].max())
    for event in sampled:
        start, end = origin + ns(event["ts"]), origin + ns(event["ts"]) + ns(event["dur"])
        assert span.start_ns - longest_weight - tolerance <= start
        assert end <= span.end_ns + tolerance


# -- writing and reading ----------------------------------------------------------------------------


def test_write_to_a_stream_and_the_text_form(tmp_path: Path) -> None:
    spans = [Span("s", 7, 10_000, 12_345, 0, "thread 7", "")]
    out = io.StringIO()
    chrome_trace.write(out, spans=spans, pid=3)
    text = out.getvalue()
    assert '"displayTimeUnit": "ms"' in text and text.index("displayTimeUnit") > text.index("traceEvents")
    document = json.loads(text)
    validate(document)
    (event,) = [e for e in document["traceEvents"] if e["ph"] == "X"]
    assert event == {
        "name": "s",
        "cat": "span",
        "ph": "X",
        "ts": 0.0,
        "dur": 2.345,
        "pid": 3,
        "tid": 7,
        "args": {"track": "thread 7", "tid": 7, "depth": 0},
    }
    assert document["otherData"]["origin_monotonic_ns"] == 10_000
    path = tmp_path / "s.json"
    chrome_trace.write(str(path), spans=spans)
    assert chrome_trace.read_spans(str(path)) == [Span("s", 7, 10_000, 12_345, 0, "thread 7", "")]


def test_bad_input_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="give a profile, spans, or both"):
        chrome_trace.to_json()
    with pytest.raises(InvalidArgument, match="ends before it starts"):
        chrome_trace.to_json(spans=[Span("bad", 1, 10, 5)])
    with pytest.raises(InvalidArgument, match="must be a Span"):
        chrome_trace.to_json(spans=[("not", "a", "span")])  # type: ignore[list-item]
    target = tmp_path / "keep.json"
    target.write_text("old")
    with pytest.raises(InvalidArgument):
        chrome_trace.write(target, spans=[Span("bad", 1, 10, 5)])
    assert target.read_text() == "old"  # nothing overwritten

    with pytest.raises(ProfileFormatError, match="no such file"):
        chrome_trace.read(tmp_path / "missing.json")
    cases = {
        "notjson.json": ("{", "not JSON"),
        "noevents.json": ('{"foo": 1}', "no traceEvents"),
        "badevent.json": ('{"traceEvents": [1]}', "traceEvents\\[0\\]"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_text(content)
        with pytest.raises(ProfileFormatError, match=message):
            chrome_trace.read(path)
    bare = tmp_path / "bare.json"
    bare.write_text('[{"ph": "B", "name": "x", "ts": 1, "pid": 1, "tid": 1}]')
    assert chrome_trace.read(bare) == {"traceEvents": [{"ph": "B", "name": "x", "ts": 1, "pid": 1, "tid": 1}]}
    assert chrome_trace.read_spans(bare) == []


def test_a_large_profile_exports_quickly_and_validly() -> None:
    rng = np.random.default_rng(3)
    n = 200_000
    frames = [Frame(f"f{i}", "big.py", i, i) for i in range(12)]
    stacks = [tuple(range(depth)) for depth in range(1, 12)] + [(0, 5, 7), (0, 5, 8, 9)]
    profile = Profile(
        frames,
        stacks,
        {1: ThreadInfo(1, "MainThread"), 2: ThreadInfo(2, "w")},
        stack=np.repeat(rng.integers(0, len(stacks), n // 20), 20),  # runs of 20 samples
        tid=rng.integers(1, 3, n),
        time_ns=np.arange(n) * 100_000,
        weight_ns=np.full(n, 200_000),
        flags=np.zeros(n, dtype=np.uint8),
        meta=ProfileMeta("cpu", 1e-4, 0.0, n * 1e-4, "3.12", n, 0, "big", {"start_monotonic_ns": 10**9}),
    )
    started = time.perf_counter()
    document = chrome_trace.to_json(profile=profile)
    elapsed = time.perf_counter() - started
    events = validate(document)
    assert elapsed < 30  # a generous bound: about 2 s on the reference machine
    # Root frame f0 is on every stack: one event per thread covering all its samples.
    roots = [e for e in events if e["name"] == "f0"]
    assert len(roots) == 2
    for root in roots:
        tid = root["tid"]
        times = profile.time_ns[profile.tid == tid]
        assert ns(root["ts"]) == max(int(times.min()) - 200_000, 0)
        assert ns(root["ts"]) + ns(root["dur"]) == int(times.max())


def test_written_text_is_the_document_even_for_awkward_names() -> None:
    profile = make_profile({"start_monotonic_ns": START})
    awkward = Profile(
        [Frame("Klass.método 🚀", "/src/模块.py", 7, 5), Frame('q"uote\\', "/srv/caf\udce9.py", 4, 4)],
        [(0, 1)],
        {MAIN: ThreadInfo(MAIN, "MainThread")},
        stack=[0, 0],
        tid=[MAIN, MAIN],
        time_ns=[MS, 2 * MS],
        weight_ns=[MS, MS],
        flags=[0, 0],
        meta=ProfileMeta("cpu", 0.001, 0.0, 0.002, "3.13.0", 2, 0, "", {"start_monotonic_ns": START}),
    )
    spans = [Span("ünïcode span", MAIN, START + 1, START + 3 * MS, 0, "tâsk", "")]
    for p in (profile, awkward):
        out = io.StringIO()
        chrome_trace.write(out, profile=p, spans=spans, pid=5)
        assert json.loads(out.getvalue()) == chrome_trace.to_json(profile=p, spans=spans, pid=5)
        validate(json.loads(out.getvalue()))


def test_the_validator_rejects_what_perfetto_would_misdraw() -> None:
    good = chrome_trace.to_json(spans=[Span("outer", 1, 0, 10_000), Span("inner", 1, 1_000, 9_000, 1)], pid=1)
    validate(good)
    overlapping = json.loads(json.dumps(good))
    inner = next(e for e in overlapping["traceEvents"] if e.get("name") == "inner")
    inner["dur"] = 9.5  # now ends at 10.5 us, after outer's 10 us
    with pytest.raises(AssertionError, match="overlaps"):
        validate(overlapping)
    unnamed = json.loads(json.dumps(good))
    unnamed["traceEvents"] = [e for e in unnamed["traceEvents"] if e.get("name") != "thread_name"]
    with pytest.raises(AssertionError, match="no thread_name"):
        validate(unnamed)
    misordered = json.loads(json.dumps(good))
    events = misordered["traceEvents"]
    events[-2], events[-1] = events[-1], events[-2]
    with pytest.raises(AssertionError):
        validate(misordered)
    missing_dur = json.loads(json.dumps(good))
    del missing_dur["traceEvents"][-1]["dur"]
    with pytest.raises(jsonschema.ValidationError):
        validate(missing_dur)
