"""Profile diff against hand-built workloads whose shares are known exactly, and its text table."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from aether_perf import Frame, InvalidArgument, Profile, ProfileMeta, ThreadInfo
from aether_perf.analysis.diff import diff_profiles
from aether_perf.model import FLAG_IDLE
from aether_perf.report.diff_text import render_diff

MS = 1_000_000
ANSI = re.compile(r"\x1b\[")
MAIN = ("main", "app.py", 1)
A, B, C, D = ("a", "app.py", 20), ("b", "work/b.py", 3), ("c", "app.py", 30), ("d", "lib/d.py", 7)
E, G = ("e", "app.py", 40), ("g", "old.py", 2)


def build(
    weights: dict[tuple[tuple[str, str, int], ...], list[int]], *, flags: list[int] | None = None
) -> Profile:
    """A one-thread profile: for every path (function keys, root first) one sample per weight (ms)."""
    frames: list[Frame] = []
    index: dict[tuple[str, str, int], int] = {}
    stacks: list[tuple[int, ...]] = []
    stack_col: list[int] = []
    weight_col: list[int] = []
    for path, samples in weights.items():
        ids = []
        for key in path:
            if key not in index:
                index[key] = len(frames)
                # The line executing differs from the first line: the diff must match by identity.
                frames.append(Frame(key[0], key[1], key[2] + 5, key[2]))
            ids.append(index[key])
        stacks.append(tuple(ids))
        for weight in samples:
            stack_col.append(len(stacks) - 1)
            weight_col.append(weight * MS)
    n = len(stack_col)
    return Profile(
        frames,
        stacks,
        {1: ThreadInfo(1, "MainThread")},
        stack=stack_col,
        tid=[1] * n,
        time_ns=np.arange(n) * MS,
        weight_ns=weight_col,
        flags=flags if flags is not None else [0] * n,
        meta=ProfileMeta("cpu", 0.001, 0.0, n / 1000, "3.12.1", n, 0, "app.py"),
    )


def base_profile() -> Profile:
    """1000ms: a 300 (30%), b 500 (50%), g 100 (10%, gone later), c>d 100 (10%)."""
    return build(
        {
            (MAIN, A): [100] * 3,
            (MAIN, B): [50] * 10,
            (MAIN, G): [100],
            (MAIN, C, D): [25] * 4,
        }
    )


def new_profile() -> Profile:
    """2000ms: a 1200 (60%), b 400 (20%), e 200 (10%, new), c>d 200 (10%); frames in another order."""
    return build(
        {
            (MAIN, C, D): [200],
            (MAIN, E): [100, 100],
            (MAIN, B): [40] * 10,
            (MAIN, A): [300] * 4,
        }
    )


def test_function_deltas_exact() -> None:
    diff = diff_profiles(base_profile(), new_profile())
    assert diff.base_total_ns == 1000 * MS and diff.new_total_ns == 2000 * MS
    assert diff.base_samples == 18 and diff.new_samples == 17
    a = diff.function("a")
    assert (a.base_self_ns, a.new_self_ns) == (300 * MS, 1200 * MS)
    assert a.base_self_pct == pytest.approx(30.0) and a.new_self_pct == pytest.approx(60.0)
    assert a.delta_self_pct == pytest.approx(30.0) and a.delta_total_pct == pytest.approx(30.0)
    b = diff.function("b")
    assert b.delta_self_pct == pytest.approx(-30.0) and b.delta_self_pct < 0
    e = diff.function("e")
    assert e.base_total_pct == 0.0 and e.new_total_pct == pytest.approx(10.0)
    g = diff.function("g")
    assert g.base_self_pct == pytest.approx(10.0) and g.new_self_pct == 0.0
    assert g.delta_self_pct == pytest.approx(-10.0)
    c, d, main = diff.function("c"), diff.function("d"), diff.function("main")
    # c has no self time but 10% total in both; d 10% self in both; main is 100% total in both.
    assert (c.base_self_pct, c.new_self_pct) == (0.0, 0.0)
    assert c.delta_total_pct == pytest.approx(0.0) and d.delta_self_pct == pytest.approx(0.0)
    assert main.base_total_pct == pytest.approx(100.0) and main.new_total_pct == pytest.approx(100.0)
    # Largest |delta self| first; ties by |delta total|, then identity.
    assert [f.function for f in diff.functions] == ["a", "b", "e", "g", "c", "d", "main"]


def test_path_deltas_exact() -> None:
    diff = diff_profiles(base_profile(), new_profile())
    by_path = {p.path: p for p in diff.paths}
    assert set(by_path) == {(MAIN, A), (MAIN, B), (MAIN, E), (MAIN, G), (MAIN, C, D)}
    assert by_path[(MAIN, A)].delta_pct == pytest.approx(30.0)
    assert by_path[(MAIN, B)].delta_pct == pytest.approx(-30.0)
    assert (by_path[(MAIN, B)].base_ns, by_path[(MAIN, B)].new_ns) == (500 * MS, 400 * MS)
    assert by_path[(MAIN, E)].delta_pct == pytest.approx(10.0)
    assert by_path[(MAIN, G)].delta_pct == pytest.approx(-10.0)
    assert by_path[(MAIN, C, D)].delta_pct == pytest.approx(0.0)
    assert [p.path[-1][0] for p in diff.paths] == ["a", "b", "e", "g", "d"]
    assert abs(sum(p.delta_pct for p in diff.paths)) < 1e-9  # shares sum to 100 on both sides


def test_same_workload_scaled_has_no_change() -> None:
    base = base_profile()
    tripled = build(
        {
            (MAIN, A): [300] * 3,
            (MAIN, B): [150] * 10,
            (MAIN, G): [300],
            (MAIN, C, D): [75] * 4,
        }
    )
    diff = diff_profiles(base, tripled)
    assert diff.new_total_ns == 3 * diff.base_total_ns
    assert all(abs(f.delta_self_pct) < 1e-9 and abs(f.delta_total_pct) < 1e-9 for f in diff.functions)
    assert all(abs(p.delta_pct) < 1e-9 for p in diff.paths)


def test_functions_matched_by_identity_not_name() -> None:
    base = build({(MAIN, ("run", "x.py", 1)): [10]})
    new = build({(MAIN, ("run", "y.py", 1)): [10]})
    diff = diff_profiles(base, new)
    assert {f.key: round(f.delta_self_pct, 9) for f in diff.functions} == {
        ("run", "x.py", 1): -100.0,
        ("run", "y.py", 1): 100.0,
        MAIN: 0.0,
    }
    with pytest.raises(KeyError):
        diff.function("run")
    assert diff.function("run", "y.py").new_self_pct == pytest.approx(100.0)


def test_idle_can_be_left_out() -> None:
    base = build({(MAIN, A): [10], (MAIN, B): [10]})
    # New: a 10ms busy, b 30ms idle. With idle: a 25%, without: a 100%.
    new = build({(MAIN, A): [10], (MAIN, B): [30]}, flags=[0, FLAG_IDLE])
    assert diff_profiles(base, new).function("a").delta_self_pct == pytest.approx(-25.0)
    busy = diff_profiles(base, new, include_idle=False)
    assert busy.function("a").delta_self_pct == pytest.approx(50.0)
    assert busy.new_total_ns == 10 * MS


def test_empty_profiles() -> None:
    empty = build({})
    diff = diff_profiles(empty, base_profile())
    assert diff.base_total_ns == 0
    assert diff.function("a").delta_self_pct == pytest.approx(30.0)
    nothing = diff_profiles(empty, empty)
    assert nothing.functions == [] and nothing.paths == []
    buffer = io.StringIO()
    render_diff(nothing, file=buffer, color=False)
    assert "no samples in either profile" in buffer.getvalue()


def _text(diff_top: int = 20, **kwargs: object) -> str:
    buffer = io.StringIO()
    render_diff(diff_profiles(base_profile(), new_profile()), top=diff_top, file=buffer, **kwargs)  # type: ignore[arg-type]
    return buffer.getvalue()


def test_text_table_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    text = _text()  # a StringIO is not a terminal: plain
    assert not ANSI.search(text)
    assert "base: 1s in 18 samples   new: 2s in 17 samples (x2.00)" in text
    functions = text.split("functions by change of self share", 1)[1].split("stacks by change", 1)[0]
    rows = [line.split() for line in functions.splitlines() if "%" in line]
    assert rows[0] == ["+30.0pp", "30.0%", "60.0%", "+30.0pp", "30.0%", "60.0%", "a", "app.py:20"]
    assert rows[1] == ["-30.0pp", "50.0%", "20.0%", "-30.0pp", "50.0%", "20.0%", "b", "work/b.py:3"]
    assert rows[2][:1] == ["+10.0pp"] and rows[2][-2:] == ["e", "app.py:40"]
    assert rows[3][:1] == ["-10.0pp"] and rows[3][-2:] == ["g", "old.py:2"]
    stacks = text.split("stacks by change of share", 1)[1]
    stack_rows = [line.split() for line in stacks.splitlines() if "%" in line]
    assert stack_rows[0] == ["+30.0pp", "30.0%", "60.0%", "main", ">", "a"]
    assert stack_rows[1] == ["-30.0pp", "50.0%", "20.0%", "main", ">", "b"]


def test_text_table_top_and_colour() -> None:
    text = _text(2, color=False)
    assert "Top 2 functions" in text and "Top 2 stacks" in text
    coloured = _text(color=True)
    assert ANSI.search(coloured)
    # Growth is red (SGR 31), shrinkage blue (SGR 34), as in the differential flamegraph.
    assert re.search(r"\x1b\[[0-9;]*31m\+30\.0pp", coloured)
    assert re.search(r"\x1b\[[0-9;]*34m-30\.0pp", coloured)
    with pytest.raises(InvalidArgument):
        _text(0)
