"""Text report: the numbers a reader sees, plain when asked or piped, coloured when asked."""

from __future__ import annotations

import io
import re

import pytest
from aether_perf import Frame, InvalidArgument, Profile, ProfileMeta, ThreadInfo
from aether_perf.report.text import render_call_tree, render_summary

MS = 1_000_000
MAIN, WORKER = 4242, 17
ANSI = re.compile(r"\x1b\[")


def make_profile() -> Profile:
    """Main thread: parse 60ms, work 30ms, fib 10ms (under main). Worker: work 40ms."""
    frames = [
        Frame("main", "app.py", 10, 1),
        Frame("work", "app.py", 20, 15),
        Frame("work", "app.py", 22, 15),
        Frame("parse", "parse.py", 5, 3),
        Frame("fib", "fib.py", 2, 1),
        Frame("fib", "fib.py", 3, 1),
    ]
    stacks = [(0, 1, 3), (0, 2), (0, 4, 5)]
    return Profile(
        frames,
        stacks,
        {MAIN: ThreadInfo(MAIN, "MainThread"), WORKER: ThreadInfo(WORKER, "worker")},
        stack=[0, 0, 0, 1, 1, 2, 1],
        tid=[MAIN, MAIN, MAIN, MAIN, MAIN, MAIN, WORKER],
        time_ns=[20 * MS, 40 * MS, 60 * MS, 75 * MS, 90 * MS, 100 * MS, 100 * MS],
        weight_ns=[20 * MS, 20 * MS, 20 * MS, 15 * MS, 15 * MS, 10 * MS, 50 * MS],
        flags=[0] * 7,
        meta=ProfileMeta("cpu", 0.001, 1_790_000_000.0, 0.5, "3.12.1", 7, 3, "app.py"),
    )


def summary(profile: Profile, **kwargs: object) -> str:
    buffer = io.StringIO()
    render_summary(profile, file=buffer, **kwargs)  # type: ignore[arg-type]
    return buffer.getvalue()


def rows(text: str) -> list[list[str]]:
    """The top-functions rows, split on runs of spaces."""
    table = text.split("functions by self time", 1)[1]
    return [line.split() for line in table.splitlines() if "%" in line and "self %" not in line]


def test_summary_plain_numbers() -> None:
    text = summary(make_profile(), color=False)
    assert not ANSI.search(text)
    assert "aether cpu profile of app.py, Python 3.12.1, started 2026-09-21 14:13:20 UTC" in text
    assert "duration 500ms  interval 1ms (1,000/s)  samples 7  dropped 3 (30.0%)  threads 2" in text
    # Whole profile: 150ms. Self: parse 60 (40%), work 30+50=80 (53.3%), fib 10 (6.7%), main 0.
    assert rows(text) == [
        ["53.3%", "93.3%", "80ms", "140ms", "3", "work", "app.py:15"],
        ["40.0%", "40.0%", "60ms", "60ms", "3", "parse", "parse.py:3"],
        ["6.7%", "6.7%", "10ms", "10ms", "1", "fib", "fib.py:1"],
        ["0.0%", "100.0%", "0s", "150ms", "0", "main", "app.py:1"],
    ]
    for header in ("self %", "total %", "self time", "total time", "samples", "function", "file:first_line"):
        assert header in text


def test_summary_threads_and_achieved_rate() -> None:
    text = summary(make_profile(), color=False)
    threads = text.split("Threads", 1)[1].split("functions by self time", 1)[0]
    lines = [line.split() for line in threads.splitlines() if line.strip().startswith(("4242", "17"))]
    # 6 samples in 0.5s = 12/s; main thread listed first.
    assert lines == [
        ["4242", "MainThread", "6", "12/s", "100ms", "66.7%"],
        ["17", "worker", "1", "2/s", "50ms", "33.3%"],
    ]


def test_summary_top_limits_rows() -> None:
    text = summary(make_profile(), color=False, top=2)
    assert "Top 2 functions by self time" in text
    assert [row[5] for row in rows(text)] == ["work", "parse"]
    with pytest.raises(InvalidArgument, match="top must be a positive integer"):
        summary(make_profile(), top=0)


def test_summary_is_deterministic_and_fits_120_columns() -> None:
    first = summary(make_profile(), color=False)
    assert first == summary(make_profile(), color=False)
    assert max(len(line) for line in first.splitlines()) <= 120


def test_summary_colour(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    assert ANSI.search(summary(make_profile(), color=True))
    assert not ANSI.search(summary(make_profile()))  # auto: a StringIO is not a terminal
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert ANSI.search(summary(make_profile()))
    monkeypatch.setenv("NO_COLOR", "1")
    assert not ANSI.search(summary(make_profile()))


def test_names_are_not_markup() -> None:
    profile = Profile(
        [Frame("[bold]f[/bold]", "[red]x.py", 1, 1)],
        [(0,)],
        {},
        stack=[0],
        tid=[1],
        time_ns=[1],
        weight_ns=[MS],
        flags=[0],
        meta=ProfileMeta("wall", 0.01, 0.0, 1.0, "3.11.7", 1, 0),
    )
    text = summary(profile, color=False)
    assert "[bold]f[/bold]" in text and "[red]x.py:1" in text


def test_undecodable_names_are_escaped() -> None:
    profile = Profile(
        [Frame("g", "caf\udce9.py", 1, 1)],
        [(0,)],
        {1: ThreadInfo(1, "t\udcff")},
        stack=[0],
        tid=[1],
        time_ns=[1],
        weight_ns=[MS],
        flags=[0],
        meta=ProfileMeta("wall", 0.01, 0.0, 1.0, "3.11.7", 1, 0),
    )
    text = summary(profile, color=False)
    text.encode("utf-8")  # no lone surrogate reaches the stream
    assert "caf\\udce9.py:1" in text and "t\\udcff" in text
    assert "caf\\udce9.py:1" in "\n".join(tree(profile))


def test_summary_of_an_empty_profile() -> None:
    profile = Profile(
        [], [], {}, stack=[], tid=[], time_ns=[], weight_ns=[], flags=[],
        meta=ProfileMeta("wall", 0.01, 0.0, 0.0, "3.11.7", 0, 0),
    )  # fmt: skip
    text = summary(profile, color=False)
    assert "samples 0" in text and "no samples" in text


def tree(profile: Profile, **kwargs: object) -> list[str]:
    buffer = io.StringIO()
    render_call_tree(profile, file=buffer, color=False, **kwargs)  # type: ignore[arg-type]
    text = buffer.getvalue()
    assert not ANSI.search(text)
    return [line.rstrip() for line in text.splitlines()]


def test_call_tree_plain() -> None:
    assert tree(make_profile()) == [
        "150ms in 7 samples (cpu time)",
        "└── 100.0% 150ms main  app.py:1",
        "    ├──  93.3% 140ms (self 80ms) work  app.py:15",
        "    │   └──  40.0% 60ms (self 60ms) parse  parse.py:3",
        "    └──   6.7% 10ms fib  fib.py:1",
        "        └──   6.7% 10ms (self 10ms) fib  fib.py:1",
    ]


def test_call_tree_min_pct_and_max_depth() -> None:
    assert tree(make_profile(), min_pct=10) == [
        "150ms in 7 samples (cpu time)",
        "└── 100.0% 150ms main  app.py:1",
        "    ├──  93.3% 140ms (self 80ms) work  app.py:15",
        "    │   └──  40.0% 60ms (self 60ms) parse  parse.py:3",
        "    └── ... 1 more under 10% (10ms)",
    ]
    assert tree(make_profile(), max_depth=2) == [
        "150ms in 7 samples (cpu time)",
        "└── 100.0% 150ms main  app.py:1",
        "    ├──  93.3% 140ms (self 80ms) work  app.py:15",
        "    │   └── ... 1 more deeper than 2 (60ms)",
        "    └──   6.7% 10ms fib  fib.py:1",
        "        └── ... 1 more deeper than 2 (10ms)",
    ]
    with pytest.raises(InvalidArgument, match="max_depth"):
        tree(make_profile(), max_depth=0)
    with pytest.raises(InvalidArgument, match="min_pct"):
        tree(make_profile(), min_pct=101)
