"""The diagnose rules on hand-built data (exact thresholds), and the allocation tracker's per-line
totals against CPython's own account of a list's growth.

Ground truth for the totals: appending to a list resizes it exactly when ``sys.getsizeof`` of the
list changes, and each resize is one ``PyMem_Realloc`` of the item array; the first one starts
from NULL (an allocation), the others grow a tracked block (growth reallocs). The bytes are the
item arrays' sizes, ``getsizeof(list) - getsizeof([])`` at each capacity.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("aether_perf") is None:
    sys.path.insert(0, str(ROOT / "python"))

from aether_perf.analysis.allocations import allocation_findings  # noqa: E402
from aether_perf.analysis.hotspots import hotspot_findings  # noqa: E402
from aether_perf.analysis.program import is_program_file  # noqa: E402
from aether_perf.model import Frame, HeapMeta, HeapSnapshot, Profile, ProfileMeta  # noqa: E402

import aether_native  # noqa: E402

MS = 1_000_000
APP = "/srv/app/main.py"


def profile_of(lines: dict[tuple[str, str, int], int]) -> Profile:
    """One sample per entry: innermost frame (function, file, line) with the given weight in ms."""
    frames = [Frame(function, file, line, 1) for function, file, line in lines]
    return Profile(
        frames,
        [(i,) for i in range(len(frames))],
        {},
        stack=list(range(len(frames))),
        tid=[1] * len(frames),
        time_ns=list(range(len(frames))),
        weight_ns=[ms * MS for ms in lines.values()],
        flags=[0] * len(frames),
        meta=ProfileMeta("cpu", 0.001, 0.0, 1.0, "3.11.7", len(frames), 0, "main.py"),
    )


def test_program_files() -> None:
    assert is_program_file(APP)
    assert not is_program_file(sys.modules["json"].__file__ or "")
    assert not is_program_file(pytest.__file__)
    assert not is_program_file("<frozen runpy>") and not is_program_file("")
    import aether_perf

    assert not is_program_file(aether_perf.__file__ or "")


def test_hot_lines_and_functions() -> None:
    profile = profile_of(
        {
            ("hot", APP, 10): 500,  # 50%: a hot line
            ("spread", APP, 20): 100,  # 4 x 10% = 40%: a hot function, no hot line
            ("spread", APP, 21): 100,
            ("spread", APP, 22): 100,
            ("spread", APP, 23): 100,
            ("lib", sys.modules["json"].__file__ or "", 5): 100,  # 10%, not the program's
        }
    )
    found = hotspot_findings(profile)
    assert [(f.rule, f.location.line if f.location else 0) for f in found] == [
        ("hotspot.line", 10),
        ("hotspot.function", 20),
    ]
    assert found[0].measured == 50.0 and found[0].severity == "info"
    assert found[1].measured == 40.0 and found[1].evidence["lines"] == [20, 21, 22, 23]
    assert hotspot_findings(profile, share=60.0, function_share=60.0) == []
    assert hotspot_findings(profile, min_time=0.6) == []  # 0.5 s is below 0.6 s


def snapshot_with(sites: list[dict[str, object]], allocated: int) -> HeapSnapshot:
    meta = HeapMeta("exact", 0, 0.0, 1.0, "3.11.7", False, allocated, 0, 10, 0, 0, 0)
    meta.extra["sites"] = sites
    return HeapSnapshot([], [], stack=[], size=[], bytes=[], count=[], tid=[], time_ns=[], meta=meta)


def test_allocation_rules_thresholds() -> None:
    mib = 1 << 20
    sites: list[dict[str, object]] = [
        {"file": APP, "line": 5, "function": "build", "allocations": 40, "bytes": 2 * mib, "growths": 39},
        {"file": APP, "line": 6, "function": "build", "allocations": 40, "bytes": mib // 2, "growths": 39},
        {"file": APP, "line": 7, "function": "build", "allocations": 31, "bytes": 4 * mib, "growths": 31},
        {"file": APP, "line": 9, "function": "churn", "allocations": 10**6, "bytes": 20 * mib, "growths": 0},
        {
            "file": "<frozen x>",
            "line": 1,
            "function": "f",
            "allocations": 99,
            "bytes": 9 * mib,
            "growths": 99,
        },
    ]
    found = allocation_findings(snapshot_with(sites, 40 * mib))
    assert [(f.rule, f.location.line if f.location else 0) for f in found] == [
        ("alloc.growth", 5),  # 39 >= 32 growths and 2 MiB >= 1 MiB; line 6 moved too little, 7 too few
        ("alloc.heavy", 9),  # 50% of 40 MiB and >= 16 MiB
    ]
    assert found[0].measured == 39 and found[0].severity == "warning"
    assert found[1].measured == 50.0 and found[1].severity == "info"
    assert allocation_findings(snapshot_with([], 0)) == []


def test_tracker_counts_every_growth_of_a_list(tmp_path: Path) -> None:
    source = tmp_path / "grow.py"
    source.write_text(
        "def grow(n):\n    data = []\n    for _ in range(n):\n        data.append(None)\n    return data\n"
    )
    namespace: dict[str, object] = {}
    exec(compile(source.read_text(), str(source), "exec"), namespace)
    grow = namespace["grow"]
    assert callable(grow)
    capacities = set()
    data: list[None] = []
    for _ in range(50_000):
        data.append(None)
        capacities.add(sys.getsizeof(data))
    tracker = aether_native.AllocationTracker(mode="exact")
    with tracker:
        grow(50_000)
    row = next(r for r in tracker.sites() if r["file"] == str(source) and r["line"] == 4)
    assert row["allocations"] == len(capacities)
    assert row["growths"] == len(capacities) - 1
    assert row["bytes"] == sum(size - sys.getsizeof([]) for size in capacities)
    snap = tracker.snapshot()
    assert snap.meta.extra["sites"] == tracker.sites()
    found = allocation_findings(snap)
    assert [(f.rule, f.location.line if f.location else 0) for f in found][:1] == [("alloc.growth", 4)]
