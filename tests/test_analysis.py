"""Analyses against hand-built ground truth: top functions, call tree, per-thread totals."""

from __future__ import annotations

import numpy as np
import pytest
from aether_perf import Frame, InvalidArgument, Profile, ProfileMeta, ThreadInfo
from aether_perf.analysis import (
    ROOT_NAME,
    CallNode,
    FunctionStat,
    call_tree,
    thread_order,
    thread_sample_counts,
    thread_totals,
    top_functions,
)
from aether_perf.model import FLAG_IDLE

MS = 1_000_000
MAIN, WORKER = 4242, 17
APP, PARSE, FIB = ("main", "app.py", 1), ("parse", "parse.py", 3), ("fib", "fib.py", 1)
WORK = ("work", "app.py", 15)


def make_profile() -> Profile:
    """Main thread: main>work>parse 3x20ms, main>work 2x15ms (at another line), main>fib>fib 10ms.

    Worker: main>work 40ms (idle), and one 10ms sample with no Python frames.
    """
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
        meta=ProfileMeta("cpu", 0.001, 1_790_000_000.0, 0.1, "3.12.1", 8, 0, "app.py"),
    )


def stat(
    key: tuple[str, str, int], self_ms: int, total_ms: int, self_n: int, total_n: int, whole_ms: int
) -> FunctionStat:
    return FunctionStat(
        function=key[0],
        file=key[1],
        first_line=key[2],
        self_ns=self_ms * MS,
        total_ns=total_ms * MS,
        self_samples=self_n,
        total_samples=total_n,
        self_pct=100.0 * self_ms / whole_ms,
        total_pct=100.0 * total_ms / whole_ms,
    )


def test_top_functions_main_thread_exact() -> None:
    result = top_functions(make_profile(), thread=MAIN)
    assert result == [
        stat(PARSE, 60, 60, 3, 3, 100),
        stat(WORK, 30, 90, 2, 5, 100),  # lines 20 and 22 are one function
        stat(FIB, 10, 10, 1, 1, 100),  # recursion counted once in total
        stat(APP, 0, 100, 0, 6, 100),
    ]
    assert [s.self_pct for s in result] == [60.0, 30.0, 10.0, 0.0]
    assert [s.total_pct for s in result] == [60.0, 90.0, 10.0, 100.0]


def test_top_functions_all_threads_exact() -> None:
    result = top_functions(make_profile())
    assert result == [
        stat(WORK, 70, 130, 3, 6, 150),
        stat(PARSE, 60, 60, 3, 3, 150),
        stat(FIB, 10, 10, 1, 1, 150),
        stat(APP, 0, 140, 0, 7, 150),  # the frameless sample counts in the denominator only
    ]


def test_top_functions_by_total() -> None:
    result = top_functions(make_profile(), by="total")
    assert [(s.function, s.total_ns // MS) for s in result] == [
        ("main", 140),
        ("work", 130),
        ("parse", 60),
        ("fib", 10),
    ]


def test_top_functions_without_idle() -> None:
    result = top_functions(make_profile(), include_idle=False)
    assert result == [
        stat(PARSE, 60, 60, 3, 3, 110),
        stat(WORK, 30, 90, 2, 5, 110),
        stat(FIB, 10, 10, 1, 1, 110),
        stat(APP, 0, 100, 0, 6, 110),
    ]
    worker_busy = top_functions(make_profile(), thread=WORKER, include_idle=False)
    assert worker_busy == []  # its only non-idle sample has no frames


def test_top_functions_n_and_arguments() -> None:
    profile = make_profile()
    assert [s.function for s in top_functions(profile, 2)] == ["work", "parse"]
    assert top_functions(profile, 0) == []
    assert len(top_functions(profile, None)) == 4
    assert profile.top_functions(1, thread=MAIN)[0].function == "parse"
    with pytest.raises(InvalidArgument, match="by must be 'self' or 'total'"):
        top_functions(profile, by="own")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="n must be"):
        top_functions(profile, -1)
    with pytest.raises(InvalidArgument, match="thread 5 is not in the profile"):
        top_functions(profile, thread=5)


def test_ties_are_broken_by_name() -> None:
    frames = [Frame("zeta", "z.py", 1, 1), Frame("alpha", "a.py", 1, 1), Frame("mid", "m.py", 1, 1)]
    profile = Profile(
        frames,
        [(0,), (1,), (2,)],
        {1: ThreadInfo(1, "MainThread")},
        stack=[0, 1, 2],
        tid=[1, 1, 1],
        time_ns=[1, 2, 3],
        weight_ns=[5, 5, 5],
        flags=[0, 0, 0],
        meta=ProfileMeta("cpu", 0.001, 0.0, 1.0, "3.11.7", 3, 0),
    )
    assert [s.function for s in top_functions(profile)] == ["alpha", "mid", "zeta"]
    assert [s.function for s in top_functions(profile, by="total")] == ["alpha", "mid", "zeta"]


def test_same_name_in_different_functions_stays_apart() -> None:
    frames = [
        Frame("<lambda>", "a.py", 3, 3),
        Frame("<lambda>", "a.py", 9, 9),
        Frame("<lambda>", "b.py", 3, 3),
    ]
    profile = Profile(
        frames,
        [(0,), (1,), (2,)],
        {},
        stack=[0, 1, 2],
        tid=[1, 1, 1],
        time_ns=[1, 2, 3],
        weight_ns=[3, 2, 1],
        flags=[0, 0, 0],
        meta=ProfileMeta("cpu", 0.001, 0.0, 1.0, "3.11.7", 3, 0),
    )
    assert [(s.file, s.first_line, s.self_ns) for s in top_functions(profile)] == [
        ("a.py", 3, 3),
        ("a.py", 9, 2),
        ("b.py", 3, 1),
    ]


def test_deep_recursion_counted_once_per_sample() -> None:
    frames = [Frame("rec", "r.py", 2, 1), Frame("leaf", "r.py", 9, 8)]
    profile = Profile(
        frames,
        [(0,) * 50 + (1,), (0,) * 10],
        {},
        stack=[0, 1, 1],
        tid=[1, 1, 1],
        time_ns=[1, 2, 3],
        weight_ns=[7, 2, 1],
        flags=[0, 0, 0],
        meta=ProfileMeta("cpu", 0.001, 0.0, 1.0, "3.11.7", 3, 0),
    )
    rec = next(s for s in top_functions(profile) if s.function == "rec")
    assert (rec.self_ns, rec.total_ns, rec.self_samples, rec.total_samples) == (3, 10, 2, 3)
    assert rec.total_pct == 100.0


# -- call tree -----------------------------------------------------------------------------------


def node_summary(node: CallNode) -> tuple[object, ...]:
    return (
        node.function,
        node.total_ns // MS,
        node.self_ns // MS,
        node.samples,
        [node_summary(child) for child in node.children.values()],
    )


def test_call_tree_main_thread_exact() -> None:
    root = call_tree(make_profile(), thread=MAIN)
    assert root.function == ROOT_NAME
    assert node_summary(root) == (
        "<root>", 100, 0, 6, [
            ("main", 100, 0, 6, [
                ("work", 90, 30, 5, [("parse", 60, 60, 3, [])]),
                ("fib", 10, 0, 1, [("fib", 10, 10, 1, [])]),
            ]),
        ],
    )  # fmt: skip
    main = root.children[APP]
    assert list(main.children) == [WORK, FIB]  # sorted by total, descending
    assert main.children[WORK].self_samples == 2


def test_call_tree_all_threads_and_idle() -> None:
    root = call_tree(make_profile())
    assert (root.total_ns, root.self_ns, root.samples, root.self_samples) == (150 * MS, 10 * MS, 8, 1)
    assert root.children[APP].children[WORK].total_ns == 130 * MS
    busy = make_profile().call_tree(include_idle=False)
    assert busy.total_ns == 110 * MS
    assert busy.children[APP].children[WORK].self_ns == 30 * MS
    assert [depth for depth, _ in root.walk()] == [0, 1, 2, 3, 2, 3]


def test_call_tree_children_ties_by_name() -> None:
    frames = [Frame("root", "r.py", 1, 1), Frame("b", "r.py", 5, 5), Frame("a", "r.py", 9, 9)]
    profile = Profile(
        frames,
        [(0, 1), (0, 2)],
        {},
        stack=[0, 1],
        tid=[1, 1],
        time_ns=[1, 2],
        weight_ns=[4, 4],
        flags=[0, 0],
        meta=ProfileMeta("cpu", 0.001, 0.0, 1.0, "3.11.7", 2, 0),
    )
    assert [n.function for n in call_tree(profile).children[("root", "r.py", 1)].children.values()] == [
        "a",
        "b",
    ]


# -- threads -------------------------------------------------------------------------------------


def test_thread_totals_and_order() -> None:
    profile = make_profile()
    assert thread_totals(profile) == {WORKER: 50 * MS, MAIN: 100 * MS}
    assert thread_sample_counts(profile) == {WORKER: 2, MAIN: 6}
    assert thread_order(profile) == [MAIN, WORKER]  # main thread first, then by tid
    silent = Profile(
        profile.frames,
        profile.stacks,
        {**profile.threads, 5: ThreadInfo(5, "silent")},
        stack=profile.stack,
        tid=profile.tid,
        time_ns=profile.time_ns,
        weight_ns=profile.weight_ns,
        flags=profile.flags,
        meta=profile.meta,
    )
    assert thread_totals(silent)[5] == 0
    assert thread_order(silent) == [MAIN, 5, WORKER]


# -- scale ---------------------------------------------------------------------------------------


def test_a_million_samples() -> None:
    """A million samples over a few stacks: the per-stack aggregation keeps this quick."""
    rng = np.random.default_rng(7)
    frames = [Frame(f"f{i}", "big.py", 10 * i + 1, 10 * i) for i in range(20)]
    stacks = [tuple(range(depth)) for depth in range(1, 21)]
    n = 1_000_000
    stack = rng.integers(0, len(stacks), n)
    weight = rng.integers(900_000, 1_100_000, n)
    profile = Profile(
        frames,
        stacks,
        {1: ThreadInfo(1, "MainThread"), 2: ThreadInfo(2, "w")},
        stack=stack,
        tid=rng.integers(1, 3, n),
        time_ns=np.arange(n, dtype=np.int64) * 1_000_000,
        weight_ns=weight,
        flags=np.zeros(n, dtype=np.uint8),
        meta=ProfileMeta("cpu", 0.001, 0.0, 1000.0, "3.11.7", n, 0),
    )
    result = top_functions(profile, n=None)
    total = int(weight.sum())
    # f0 is the root of every stack; f19 is only the leaf of the deepest one.
    f0 = next(s for s in result if s.function == "f0")
    assert (f0.total_ns, f0.total_samples, f0.total_pct) == (total, n, 100.0)
    f19 = next(s for s in result if s.function == "f19")
    deepest = stack == 19
    assert f19.self_ns == f19.total_ns == int(weight[deepest].sum())
    assert sum(s.self_ns for s in result) == total
    tree = call_tree(profile)
    assert tree.total_ns == total and tree.samples == n
