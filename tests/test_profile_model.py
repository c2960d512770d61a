"""The Profile model: construction, validation, filters, and the aprof file (save/load)."""

from __future__ import annotations

import ast
import json
import os
import struct
import zlib
from pathlib import Path

import aether_perf
import numpy as np
import pytest
from aether_perf import (
    AetherError,
    Frame,
    InvalidArgument,
    Profile,
    ProfileFormatError,
    ProfileMeta,
    RunFailed,
    SamplerBusyError,
    SamplerStateError,
    ThreadInfo,
    load_profile,
)
from aether_perf.model import FLAG_HOLDS_GIL, FLAG_IDLE, FLAG_TRUNCATED, fileformat

MAIN, WORKER = 4242, 17


def make_profile(extra: dict[str, object] | None = None) -> Profile:
    """Two threads, four stacks, eight samples; weights in ms chosen by hand."""
    frames = [
        Frame("main", "app.py", 10, 1),
        Frame("work", "app.py", 20, 15),
        Frame("work", "app.py", 22, 15),
        Frame("parse", "parse.py", 5, 3),
        Frame("fib", "fib.py", 2, 1),
        Frame("fib", "fib.py", 3, 1),
    ]
    stacks = [(0, 1, 3), (0, 2), (0, 4, 5), ()]
    ms = 1_000_000
    return Profile(
        frames,
        stacks,
        {MAIN: ThreadInfo(MAIN, "MainThread"), WORKER: ThreadInfo(WORKER, "worker")},
        stack=[0, 1, 0, 1, 3, 0, 1, 2],
        tid=[MAIN, WORKER, MAIN, MAIN, WORKER, MAIN, MAIN, MAIN],
        time_ns=[20 * ms, 40 * ms, 40 * ms, 75 * ms, 50 * ms, 60 * ms, 90 * ms, 100 * ms],
        weight_ns=[20 * ms, 40 * ms, 20 * ms, 15 * ms, 10 * ms, 20 * ms, 15 * ms, 10 * ms],
        flags=[FLAG_HOLDS_GIL, FLAG_IDLE, FLAG_HOLDS_GIL, 0, 0, FLAG_HOLDS_GIL, 0, FLAG_TRUNCATED],
        meta=ProfileMeta(
            mode="cpu",
            interval=0.001,
            start_time=1_790_000_000.25,
            duration=0.1,
            python_version="3.12.1",
            sample_count=8,
            dropped=2,
            program="app.py --fast",
            extra=extra if extra is not None else {"pid": 4242, "argv": ["app.py", "--fast"], "note": None},
        ),
    )


# -- errors and exports ------------------------------------------------------------------------


def test_error_hierarchy() -> None:
    assert issubclass(InvalidArgument, AetherError) and issubclass(InvalidArgument, ValueError)
    assert issubclass(ProfileFormatError, AetherError)
    assert issubclass(SamplerStateError, AetherError) and issubclass(SamplerStateError, RuntimeError)
    assert issubclass(SamplerBusyError, AetherError) and issubclass(SamplerBusyError, RuntimeError)
    assert issubclass(RunFailed, AetherError)
    for name in ("Profile", "Frame", "ThreadInfo", "ProfileMeta", "load_profile", "AetherError", "RunFailed"):
        assert name in aether_perf.__all__


def test_aether_perf_never_imports_aether_native() -> None:
    root = Path(aether_perf.__file__).parent
    for source in root.rglob("*.py"):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(name.split(".")[0] == "aether_native" for name in names), source


# -- construction --------------------------------------------------------------------------------


def test_columns_have_the_contract_dtypes_and_are_read_only() -> None:
    profile = make_profile()
    assert profile.stack.dtype == np.int32
    assert profile.tid.dtype == np.int64
    assert profile.time_ns.dtype == np.int64
    assert profile.weight_ns.dtype == np.int64
    assert profile.flags.dtype == np.uint8
    with pytest.raises(ValueError):
        profile.weight_ns[0] = 1
    assert len(profile) == 8
    assert profile.total_weight_ns == 150_000_000
    assert profile.thread_ids() == [WORKER, MAIN]
    assert profile.main_thread_id() == MAIN
    assert profile.stacks[0] == (0, 1, 3)


def test_columns_are_copied() -> None:
    weights = np.array([5, 6], dtype=np.int64)
    profile = Profile(
        [Frame("f", "a.py", 1, 1)],
        [(0,)],
        {},
        stack=[0, 0],
        tid=[1, 1],
        time_ns=[1, 2],
        weight_ns=weights,
        flags=[0, 0],
        meta=ProfileMeta("wall", 0.01, 0.0, 1.0, "3.11", 2, 0),
    )
    weights[0] = 99
    assert profile.weight_ns.tolist() == [5, 6]
    assert weights.flags.writeable  # the caller's array is left alone


def test_unknown_sampled_thread_gets_a_default_name() -> None:
    profile = Profile(
        [Frame("f", "a.py", 1, 1)],
        [(0,)],
        {1: ThreadInfo(1, "MainThread")},
        stack=[0, 0],
        tid=[1, 7],
        time_ns=[1, 2],
        weight_ns=[1, 1],
        flags=[0, 0],
        meta=ProfileMeta("cpu", 0.001, 0.0, 1.0, "3.11", 2, 0),
    )
    assert profile.threads[7] == ThreadInfo(7, "Thread 7")


def test_empty_profile() -> None:
    profile = Profile(
        [],
        [],
        {},
        stack=[],
        tid=[],
        time_ns=[],
        weight_ns=[],
        flags=[],
        meta=ProfileMeta("cpu", 0.001, 0.0, 0.0, "3.11", 0, 0),
    )
    assert len(profile) == 0
    assert profile.total_weight_ns == 0
    assert profile.stack.dtype == np.int32
    assert profile.main_thread_id() is None


def _build(**changes: object) -> Profile:
    parts: dict[str, object] = {
        "frames": [Frame("f", "a.py", 1, 1)],
        "stacks": [(0,)],
        "threads": {1: ThreadInfo(1, "t")},
        "stack": [0],
        "tid": [1],
        "time_ns": [1],
        "weight_ns": [1],
        "flags": [0],
        "meta": ProfileMeta("cpu", 0.001, 0.0, 1.0, "3.11", 1, 0),
    }
    parts.update(changes)
    frames, stacks, threads = parts.pop("frames"), parts.pop("stacks"), parts.pop("threads")
    return Profile(frames, stacks, threads, **parts)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"tid": [1, 1]}, "differ in length"),
        ({"stack": [1]}, "outside the 1-stack table"),
        ({"stack": [-1]}, "outside the 1-stack table"),
        ({"stacks": [(0, 3)]}, "refers to a frame outside"),
        ({"stacks": [(-1,)]}, "refers to a frame outside"),
        ({"weight_ns": [-5]}, "negative weight"),
        ({"weight_ns": [1.5]}, "must hold integers"),
        ({"flags": [256]}, "outside uint8"),
        ({"stack": [[0]]}, "one-dimensional"),
        ({"frames": ["f"]}, "must be a Frame"),
        ({"threads": {1: ThreadInfo(2, "t")}}, "describes thread 2"),
        ({"threads": {1: "t"}}, "must be a ThreadInfo"),
        ({"meta": ProfileMeta("gpu", 0.001, 0.0, 1.0, "3.11", 1, 0)}, "meta.mode"),
        ({"meta": ProfileMeta("cpu", float("nan"), 0.0, 1.0, "3.11", 1, 0)}, "meta.interval"),
        ({"meta": ProfileMeta("cpu", 0.001, 0.0, 1.0, "3.11", -1, 0)}, "meta.sample_count"),
        ({"meta": "cpu"}, "must be a ProfileMeta"),
    ],
)
def test_inconsistent_parts_raise(changes: dict[str, object], words: str) -> None:
    with pytest.raises(InvalidArgument, match=words):
        _build(**changes)


# -- filter --------------------------------------------------------------------------------------


def test_filter_by_thread() -> None:
    profile = make_profile()
    main = profile.filter(thread=MAIN)
    assert len(main) == 6
    assert set(main.tid.tolist()) == {MAIN}
    assert main.total_weight_ns == 100_000_000
    assert main.threads == {MAIN: ThreadInfo(MAIN, "MainThread")}
    assert main.meta.sample_count == 6
    assert main.frames == profile.frames and main.stacks == profile.stacks
    assert profile.meta.sample_count == 8  # the original is untouched
    with pytest.raises(InvalidArgument, match="thread 5 is not in the profile"):
        profile.filter(thread=5)


def test_filter_idle() -> None:
    busy = make_profile().filter(include_idle=False)
    assert len(busy) == 7
    assert busy.total_weight_ns == 110_000_000
    assert not np.any(busy.flags & FLAG_IDLE)


def test_filter_time_window_rebases() -> None:
    profile = make_profile()
    window = profile.filter(start_ns=40_000_000, end_ns=75_000_000)  # [40ms, 75ms)
    assert sorted(window.time_ns.tolist()) == [0, 0, 10_000_000, 20_000_000]
    assert window.total_weight_ns == 90_000_000  # 40 + 20 + 10 + 20 ms; the sample at 75ms is out
    assert window.meta.start_time == pytest.approx(profile.meta.start_time + 0.04)
    assert window.meta.duration == pytest.approx(0.035)
    tail = profile.filter(end_ns=60_000_000)
    assert tail.meta.start_time == profile.meta.start_time
    assert tail.meta.duration == pytest.approx(0.06)
    assert sorted(tail.time_ns.tolist()) == [20_000_000, 40_000_000, 40_000_000, 50_000_000]
    with pytest.raises(InvalidArgument, match="after its end"):
        profile.filter(start_ns=5, end_ns=1)


# -- save / load round trip --------------------------------------------------------------------


def test_round_trip_preserves_everything(tmp_path: Path) -> None:
    profile = make_profile(extra={"pid": 4242, "nested": {"a": [1, 2.5, True, None, "ü"]}, "ratio": 0.1})
    path = tmp_path / "run.aprof"
    profile.save(path)
    again = Profile.load(path)
    assert again == profile
    for name in ("stack", "tid", "time_ns", "weight_ns", "flags"):
        assert getattr(again, name).dtype == getattr(profile, name).dtype
        assert getattr(again, name).tolist() == getattr(profile, name).tolist()
    assert again.meta == profile.meta
    assert again.meta.extra == profile.meta.extra
    assert again.threads == profile.threads
    assert list(again.threads) == list(profile.threads)
    assert again.frames == profile.frames
    assert again.stacks == profile.stacks
    assert load_profile(str(path)) == profile
    assert os.listdir(tmp_path) == ["run.aprof"]
    assert path.read_bytes()[:8] == b"AETHERPF"


def test_round_trip_unicode_and_odd_values(tmp_path: Path) -> None:
    frames = [
        Frame("Klass.método", "/tmp/ünï cödé/模块.py", 3, 1),
        Frame("<lambda>", "", 0, 0),
        Frame("f;g\nh", "x.py", 2**31 - 1, 1),
        Frame("g", "/srv/caf\udce9.py", 4, 4),  # an undecodable file name (surrogateescape)
    ]
    profile = Profile(
        frames,
        [(0, 1, 2), (), (2, 3)],
        {2**40: ThreadInfo(2**40, "wörker 🧵"), 1: ThreadInfo(1, "")},
        stack=[0, 1, 2],
        tid=[2**40, 2**40, 1],
        time_ns=[0, 2**62, 5],
        weight_ns=[2**62, 0, 7],
        flags=[255, 0, 1],
        meta=ProfileMeta("wall", 0.000_05, 0.0, 12.5, "3.13.0", 3, 0, "prögram", {"ключ": "значение"}),
    )
    path = tmp_path / "ü.aprof"
    profile.save(path)
    assert Profile.load(path) == profile


def test_round_trip_empty_profile_and_silent_threads(tmp_path: Path) -> None:
    profile = Profile(
        [],
        [],
        {3: ThreadInfo(3, "never sampled")},
        stack=[],
        tid=[],
        time_ns=[],
        weight_ns=[],
        flags=[],
        meta=ProfileMeta("cpu", 0.001, 0.0, 0.0, "3.11.7", 0, 0),
    )
    profile.save(tmp_path / "empty.aprof")
    again = load_profile(tmp_path / "empty.aprof")
    assert again == profile
    assert again.threads == {3: ThreadInfo(3, "never sampled")}


@pytest.mark.parametrize("extra", [{"t": (1, 2)}, {1: "int key"}, {"o": object()}, {"n": float("nan")}])
def test_save_refuses_extra_that_would_not_round_trip(tmp_path: Path, extra: dict[object, object]) -> None:
    profile = make_profile(extra=extra)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match=r"meta\.extra"):
        profile.save(tmp_path / "x.aprof")
    assert os.listdir(tmp_path) == []


# -- atomic save -------------------------------------------------------------------------------


def test_failed_save_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "run.aprof"
    make_profile().save(path)
    before = path.read_bytes()

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    smaller = make_profile().filter(thread=WORKER)
    with pytest.raises(OSError, match="No space left"):
        smaller.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["run.aprof"]  # no temporary file left behind
    assert load_profile(path) == make_profile()


def test_save_failing_while_encoding_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "new.aprof"
    calls: list[int] = []

    def failing_compress(data: bytes, level: int = -1) -> bytes:
        calls.append(len(data))
        raise MemoryError("out of memory while compressing")

    monkeypatch.setattr(zlib, "compress", failing_compress)
    with pytest.raises(MemoryError):
        make_profile().save(path)
    assert calls and os.listdir(tmp_path) == []


def test_failure_after_writing_part_of_the_payload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "run.aprof"
    path.write_bytes(b"old content")
    real_fdopen = os.fdopen

    class Exploding:
        def __init__(self, inner: object) -> None:
            self.inner = inner
            self.writes = 0

        def write(self, data: bytes) -> int:
            self.writes += 1
            if self.writes == 2:  # the header went out, the payload does not
                raise OSError(5, "Input/output error")
            return self.inner.write(data)  # type: ignore[attr-defined, no-any-return]

        def __getattr__(self, name: str) -> object:
            return getattr(self.inner, name)

        def __enter__(self) -> Exploding:
            return self

        def __exit__(self, *exc: object) -> None:
            self.inner.close()  # type: ignore[attr-defined]

    monkeypatch.setattr(os, "fdopen", lambda *a, **k: Exploding(real_fdopen(*a, **k)))
    with pytest.raises(OSError, match="Input/output error"):
        make_profile().save(path)
    assert path.read_bytes() == b"old content"
    assert os.listdir(tmp_path) == ["run.aprof"]


# -- load errors -------------------------------------------------------------------------------


def _load_error(path: Path) -> str:
    with pytest.raises(ProfileFormatError) as caught:
        Profile.load(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, bytes]:
    path = tmp_path / "good.aprof"
    make_profile().save(path)
    return path, path.read_bytes()


def test_load_missing_file(tmp_path: Path) -> None:
    assert _load_error(tmp_path / "nope.aprof").endswith(": no such file")


def test_load_directory(tmp_path: Path) -> None:
    assert "is a directory" in _load_error(tmp_path)


def test_load_empty_file(tmp_path: Path) -> None:
    (tmp_path / "e.aprof").write_bytes(b"")
    assert "empty file" in _load_error(tmp_path / "e.aprof")


def test_load_speedscope_json(tmp_path: Path) -> None:
    path = tmp_path / "profile.speedscope.json"
    path.write_text(json.dumps({"$schema": "https://www.speedscope.app/file-format-schema.json"}))
    message = _load_error(path)
    assert "not an aether file" in message and "JSON" in message


@pytest.mark.parametrize(
    "content", [b"\x00\x01\x02 random bytes here and more", b"AETHERPX" + bytes(40), b"GIF89a"]
)
def test_load_wrong_magic(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.aprof"
    path.write_bytes(content)
    assert "not an aether file" in _load_error(path)


@pytest.mark.parametrize("keep", [1, 4, 8, 10, 12, 23, 24, 25, 60, -1])
def test_load_truncated(saved: tuple[Path, bytes], keep: int) -> None:
    path, data = saved
    path.write_bytes(data[:keep])
    message = _load_error(path)
    assert "truncated" in message


def test_load_checksum_mismatch(saved: tuple[Path, bytes]) -> None:
    path, data = saved
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(flipped))
    assert "checksum mismatch" in _load_error(path)


def test_load_future_version(saved: tuple[Path, bytes]) -> None:
    path, data = saved
    path.write_bytes(data[:8] + struct.pack("<H", 7) + data[10:])
    message = _load_error(path)
    assert message.endswith(
        f"written by a newer aether (format version 7); this one reads up to {fileformat.READABLE_VERSION}"
    )
    # Even a truncated file from the future says so (the version sits right after the magic).
    path.write_bytes(data[:8] + struct.pack("<H", 7) + data[10:16])
    assert "newer aether (format version 7)" in _load_error(path)


def test_load_invalid_version_and_flags(saved: tuple[Path, bytes]) -> None:
    path, data = saved
    path.write_bytes(data[:8] + struct.pack("<H", 0) + data[10:])
    assert "invalid format version 0" in _load_error(path)
    path.write_bytes(data[:10] + struct.pack("<H", 0x8001) + data[12:])
    assert "unknown header flags" in _load_error(path)


def test_load_trailing_garbage(saved: tuple[Path, bytes]) -> None:
    path, data = saved
    path.write_bytes(data + b"junk")
    assert "4 unexpected bytes after the payload" in _load_error(path)


def _container(payload: bytes) -> bytes:
    packed = zlib.compress(payload)
    return struct.pack("<8sHHQI", b"AETHERPF", 1, 1, len(packed), zlib.crc32(packed)) + packed


def test_load_sound_container_with_broken_content(tmp_path: Path) -> None:
    path = tmp_path / "x.aprof"
    path.write_bytes(_container(struct.pack("<I", 5) + b"{oops"))
    assert "malformed: JSON header does not parse" in _load_error(path)
    path.write_bytes(_container(b"\x01"))
    assert "malformed" in _load_error(path)
    path.write_bytes(_container(struct.pack("<I", 99) + b"{}"))
    assert "runs past the end" in _load_error(path)
    header = json.dumps({"kind": "profile", "header": {}, "columns": []}).encode()
    path.write_bytes(_container(struct.pack("<I", len(header)) + header))
    assert "malformed profile: missing columns" in _load_error(path)
    odd = json.dumps(
        {"kind": "x", "header": {}, "columns": [{"name": "a", "dtype": "|O", "length": 1}]}
    ).encode()
    path.write_bytes(_container(struct.pack("<I", len(odd)) + odd))
    assert "unsupported dtype" in _load_error(path)


def test_load_other_kind(tmp_path: Path) -> None:
    path = tmp_path / "heap.aprof"
    fileformat.write_document(path, "heap", {"blocks": 3}, {"size": np.arange(3, dtype=np.int64)})
    document = fileformat.read_document(path)
    assert document.kind == "heap" and document.header == {"blocks": 3}
    assert document.columns["size"].tolist() == [0, 1, 2]
    assert "holds a 'heap' document, not a profile" in _load_error(path)


def test_load_profile_with_inconsistent_columns(saved: tuple[Path, bytes], tmp_path: Path) -> None:
    path, _ = saved
    from aether_perf.model.profile_codec import profile_document

    header, columns = profile_document(make_profile())
    columns["stack"] = np.array([0, 1, 9, 0, 0, 0, 0, 0], dtype=np.int32)  # stack 9 does not exist
    fileformat.write_document(path, "profile", header, columns)
    message = _load_error(path)
    assert "malformed profile" in message and "stack" in message
    header["meta"] = {"mode": "cpu"}
    fileformat.write_document(path, "profile", header, profile_document(make_profile())[1])
    assert "malformed profile: meta.interval" in _load_error(path)


def test_load_profile_and_the_load_testing_package_do_not_clash(tmp_path: Path) -> None:
    """``aether_perf.load`` is the load-testing package; reading a profile is ``load_profile``
    (an attribute of the same name used to be shadowed once the package was imported)."""
    import aether_perf.load as load_testing

    path = tmp_path / "p.aprof"
    make_profile().save(path)
    assert aether_perf.load is load_testing and hasattr(load_testing, "Scenario")
    assert aether_perf.load_profile(path) == make_profile()
