"""Collapsed stacks: exact lines for a hand-built profile, options, sanitising, and the parser."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from aether_perf import Frame, InvalidArgument, Profile, ProfileFormatError, ProfileMeta, ThreadInfo
from aether_perf.export import collapsed
from aether_perf.model import FLAG_IDLE

MS = 1_000_000
MAIN, WORKER = 4242, 17


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
        {MAIN: ThreadInfo(MAIN, "MainThread"), WORKER: ThreadInfo(WORKER, "worker")},
        stack=[0, 1, 0, 1, 3, 0, 1, 2],
        tid=[MAIN, WORKER, MAIN, MAIN, WORKER, MAIN, MAIN, MAIN],
        time_ns=[20 * MS, 40 * MS, 40 * MS, 75 * MS, 50 * MS, 60 * MS, 90 * MS, 100 * MS],
        weight_ns=[20 * MS, 40 * MS, 20 * MS, 15 * MS, 10 * MS, 20 * MS, 15 * MS, 10 * MS],
        flags=[0, FLAG_IDLE, 0, 0, 0, 0, 0, 0],
        meta=ProfileMeta("cpu", 0.001, 0.0, 0.1, "3.12.1", 8, 0, "app.py"),
    )


def written(profile: Profile, **kwargs: object) -> list[str]:
    buffer = io.StringIO()
    collapsed.write(profile, buffer, **kwargs)  # type: ignore[arg-type]
    text = buffer.getvalue()
    assert text.endswith("\n")
    return text.splitlines()


def test_weight_in_microseconds() -> None:
    assert written(make_profile()) == [
        "<no Python frames> 10000",
        "main (app.py);fib (fib.py);fib (fib.py) 10000",
        "main (app.py);work (app.py) 70000",  # main thread 30ms + worker 40ms
        "main (app.py);work (app.py);parse (parse.py) 60000",
    ]


def test_lines_keep_frames_at_different_lines_apart() -> None:
    assert written(make_profile(), lines=True) == [
        "<no Python frames> 10000",
        "main (app.py:10);fib (fib.py:2);fib (fib.py:3) 10000",
        "main (app.py:10);work (app.py:20);parse (parse.py:5) 60000",
        "main (app.py:10);work (app.py:22) 70000",
    ]


def test_sample_counts() -> None:
    assert written(make_profile(), value="samples") == [
        "<no Python frames> 1",
        "main (app.py);fib (fib.py);fib (fib.py) 1",
        "main (app.py);work (app.py) 3",
        "main (app.py);work (app.py);parse (parse.py) 3",
    ]


def test_threads_prefix_a_thread_root() -> None:
    assert written(make_profile(), threads=True) == [
        "Thread 17 worker;<no Python frames> 10000",
        "Thread 17 worker;main (app.py);work (app.py) 40000",
        "Thread 4242 MainThread;main (app.py);fib (fib.py);fib (fib.py) 10000",
        "Thread 4242 MainThread;main (app.py);work (app.py) 30000",
        "Thread 4242 MainThread;main (app.py);work (app.py);parse (parse.py) 60000",
    ]


def test_rounding_and_omitting_zero() -> None:
    frames = [
        Frame("a", "x.py", 1, 1),
        Frame("b", "x.py", 2, 2),
        Frame("c", "x.py", 3, 3),
        Frame("d", "x.py", 4, 4),
    ]
    profile = Profile(
        frames,
        [(0,), (1,), (2,), (3,)],
        {},
        stack=[0, 1, 2, 3, 3],
        tid=[1] * 5,
        time_ns=[1, 2, 3, 4, 5],
        weight_ns=[1499, 1500, 499, 250, 250],
        flags=[0] * 5,
        meta=ProfileMeta("cpu", 0.001, 0.0, 1.0, "3.11.7", 5, 0),
    )
    # 1499ns -> 1us, 1500ns -> 2us (half up), 499ns -> 0 (left out), 250+250ns summed first -> 1us
    assert written(profile) == ["a (x.py) 1", "b (x.py) 2", "d (x.py) 1"]
    assert written(profile, value="samples") == ["a (x.py) 1", "b (x.py) 1", "c (x.py) 1", "d (x.py) 2"]


def test_sanitising_names() -> None:
    frames = [
        Frame("f;g", "dir;x/a b.py", 1, 1),
        Frame("multi\nline\r\nname", "y.py", 2, 2),
        Frame("sep\u2028name", "", 3, 3),
        Frame("with space 12", "z.py", 4, 4),
        Frame("g", "caf\udce9.py", 5, 5),
    ]
    profile = Profile(
        frames,
        [(0, 1, 2, 3, 4)],
        {1: ThreadInfo(1, "bad;thread\nname")},
        stack=[0],
        tid=[1],
        time_ns=[1],
        weight_ns=[3000],
        flags=[0],
        meta=ProfileMeta("cpu", 0.001, 0.0, 1.0, "3.11.7", 1, 0),
    )
    lines = written(profile, threads=True)
    assert lines == [
        "Thread 1 bad:thread name;f:g (dir:x/a b.py);multi line  name (y.py);sep name;with space 12 (z.py);"
        "g (caf\\udce9.py) 3"
    ]
    assert collapsed.read(io.StringIO("\n".join(lines) + "\n")) == [
        (("Thread 1 bad:thread name", "f:g (dir:x/a b.py)", "multi line  name (y.py)", "sep name",
          "with space 12 (z.py)", "g (caf\\udce9.py)"), 3),
    ]  # fmt: skip


def test_write_to_path(tmp_path: Path) -> None:
    path = tmp_path / "out.collapsed.txt"
    make_profile().to_collapsed(path, value="samples")
    assert path.read_text(encoding="utf-8").splitlines()[0] == "<no Python frames> 1"
    assert collapsed.read(path)[-1] == (("main (app.py)", "work (app.py)", "parse (parse.py)"), 3)
    assert os.listdir(tmp_path) == ["out.collapsed.txt"]


def test_empty_profile_writes_nothing() -> None:
    profile = Profile(
        [], [], {}, stack=[], tid=[], time_ns=[], weight_ns=[], flags=[],
        meta=ProfileMeta("cpu", 0.001, 0.0, 0.0, "3.11.7", 0, 0),
    )  # fmt: skip
    buffer = io.StringIO()
    collapsed.write(profile, buffer)
    assert buffer.getvalue() == ""


def test_bad_value() -> None:
    with pytest.raises(InvalidArgument, match="value must be 'weight' or 'samples'"):
        collapsed.write(make_profile(), io.StringIO(), value="bytes")  # type: ignore[arg-type]


def test_read_splits_at_the_last_space() -> None:
    text = "a;b c;d 12\n\nsolo 3\r\nx (f.py) 0\n"
    assert collapsed.read(io.StringIO(text)) == [(("a", "b c", "d"), 12), (("solo",), 3), (("x (f.py)",), 0)]


@pytest.mark.parametrize("line", ["no_count", "a;b 1.5", "a;b -1", " 12", "a;b ²"])
def test_read_rejects_malformed_lines(tmp_path: Path, line: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("ok 1\n" + line + "\n", encoding="utf-8")
    with pytest.raises(ProfileFormatError) as caught:
        collapsed.read(path)
    assert str(caught.value) == f"{path}: line 2 is not 'frame;frame;... count'"
