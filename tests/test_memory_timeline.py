"""Memory over time: the series an AllocationTracker records, its file round trip, the text peak and
the HTML chart in a real headless Chromium.

Ground truth: ``hold_100mib`` allocates one 100 MiB bytearray (every page touched, so RSS rises
too), holds it 0.5 s and frees it. The tracked heap series must rise by 100 MiB (within 10%) during
the hold and fall back after; RSS likewise. The recorder's own thread must not show in the heap
it measures: an idle tracked run stays within a few hundred bytes of where it started.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aether_perf.errors import InvalidArgument, ProfileFormatError
from aether_perf.model import load_heap
from aether_perf.model.fileformat import write_document
from aether_perf.model.heap_codec import heap_document
from aether_perf.model.memory_series import MemorySeries
from aether_perf.report.heap_text import render_heap_summary

from aether_native.memory import AllocationTracker

MIB = 1 << 20
BIG = 100 * MIB
HOLD_S = 0.5
Run = tuple[AllocationTracker, dict[str, int], int]


def hold_100mib(marks: dict[str, int]) -> None:
    time.sleep(0.15)
    marks["alloc"] = time.monotonic_ns()
    block = bytearray(BIG)
    block[:: os.sysconf("SC_PAGE_SIZE")] = b"\x01" * len(block[:: os.sysconf("SC_PAGE_SIZE")])
    marks["held"] = time.monotonic_ns()
    time.sleep(HOLD_S)
    marks["free"] = time.monotonic_ns()
    del block
    time.sleep(0.15)


@pytest.fixture(scope="module")
def run() -> Run:
    marks: dict[str, int] = {}
    tracker = AllocationTracker(series_interval="10ms")
    origin = time.monotonic_ns()
    with tracker:
        hold_100mib(marks)
    return tracker, marks, origin


def test_series_rises_and_falls_by_the_right_height(run: Run) -> None:
    tracker, marks, origin = run
    series = tracker.snapshot().series
    assert series is not None and series.interval_ns == 10_000_000
    t = series.time_ns + origin  # the tracker started within microseconds of `origin`
    before = series.heap_bytes[t < marks["alloc"]]
    during = series.heap_bytes[(t > marks["held"] + 20_000_000) & (t < marks["free"] - 20_000_000)]
    after = series.heap_bytes[t > marks["free"] + 50_000_000]
    assert len(before) >= 5 and len(during) >= 20 and len(after) >= 5
    rise = int(np.median(during)) - int(np.median(before))
    assert abs(rise - BIG) <= 0.10 * BIG
    assert abs(int(np.median(after)) - int(np.median(before))) <= 0.10 * BIG
    peak = series.heap_peak()
    assert peak is not None and abs(peak.bytes - tracker.statistics()["peak_bytes"]) <= 0.10 * BIG
    # Points every ~10 ms: the hold alone spans ~50 of them.
    assert 0.005 <= float(np.median(np.diff(series.time_ns))) / 1e9 <= 0.05
    assert series.has_rss
    rss_before = series.rss_bytes[t < marks["alloc"]]
    rss_during = series.rss_bytes[(t > marks["held"] + 20_000_000) & (t < marks["free"] - 20_000_000)]
    rss_rise = int(np.median(rss_during)) - int(np.median(rss_before))
    assert abs(rss_rise - BIG) <= 0.10 * BIG


def test_recorder_thread_is_invisible_and_does_not_pollute_the_heap() -> None:
    names = {t.name for t in threading.enumerate()}
    with AllocationTracker(series_interval="1ms") as tracker:
        time.sleep(0.3)  # ~300 ticks, each making ints and a bytes object on the recorder thread
        during = {t.name for t in threading.enumerate()}
        running = tracker.memory_series()  # readable while running
    series = tracker.memory_series()
    assert during == names
    assert running is not None and 0 < len(running) <= len(series)
    assert series is not None and len(series) >= 50
    # Up to the copy read while running (itself tracked, made on this thread), only what start()
    # made on this thread is live: a few hundred bytes, flat over ~300 ticks of the recorder.
    before_copy = series.heap_bytes[: len(running)]
    assert int(before_copy.max()) < 1024
    assert int(before_copy.max()) == int(before_copy.min())


def test_series_off_and_bad_interval() -> None:
    with AllocationTracker(series_interval=None) as tracker:
        pass
    assert tracker.snapshot().series is None
    assert tracker.memory_series() is None
    for bad in ("fast", "0ms", "-1s", "1us", "2h", True):
        with pytest.raises(InvalidArgument, match="series_interval"):
            AllocationTracker(series_interval=bad)  # type: ignore[arg-type]


def test_file_round_trip_and_older_files(run: Run, tmp_path: Path) -> None:
    tracker, _, _ = run
    snap = tracker.snapshot()
    snap.save(tmp_path / "m.heap.aprof")
    loaded = load_heap(tmp_path / "m.heap.aprof")
    assert loaded == snap
    assert loaded.series is not None and np.array_equal(loaded.series.heap_bytes, snap.series.heap_bytes)  # type: ignore[union-attr]
    # A file written before the series existed (no header field, no columns) still loads.
    header, columns = heap_document(snap)
    del header["series"]
    old = {k: v for k, v in columns.items() if not k.startswith("series_")}
    write_document(tmp_path / "old.aprof", "heap", header, old)
    assert load_heap(tmp_path / "old.aprof").series is None
    # A series header without its columns is a malformed file, said in one line.
    header, columns = heap_document(snap)
    del columns["series_rss_bytes"]
    write_document(tmp_path / "bad.aprof", "heap", header, columns)
    with pytest.raises(ProfileFormatError, match="series"):
        load_heap(tmp_path / "bad.aprof")


def test_series_model_checks() -> None:
    ok = {"interval_ns": 10, "time_ns": [0, 10], "heap_bytes": [1, 2], "rss_bytes": [3, 4]}
    assert len(MemorySeries(**ok)) == 2  # type: ignore[arg-type]
    for change in (
        {"interval_ns": 0},
        {"time_ns": [10, 0]},
        {"heap_bytes": [1]},
        {"rss_bytes": [-1, 4]},
        {"heap_bytes": [1.5, 2.0]},
    ):
        with pytest.raises(InvalidArgument):
            MemorySeries(**{**ok, **change})  # type: ignore[arg-type]


def test_text_report_shows_the_peaks(run: Run) -> None:
    import io

    tracker, _, _ = run
    out = io.StringIO()
    render_heap_summary(tracker.snapshot(), file=out, color=False)
    line = next(x for x in out.getvalue().splitlines() if x.startswith("memory over time"))
    assert "tracked heap peak 100MiB" in line and "RSS peak" in line


# ---------------------------------------------------------------- in a real browser


def test_html_chart_renders_the_rise_in_chromium(run: Run, browser: Any, tmp_path: Path) -> None:
    tracker, _, _ = run
    path = tmp_path / "mem.html"
    tracker.snapshot().to_flamegraph_html(path)
    errors: list[str] = []
    requests: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.resolve().as_uri())
    page.wait_for_selector("body[data-ready]")
    chart = page.eval_on_selector(
        "#memory-chart",
        """svg => {
          const heap = svg.querySelector('.series-heap').getBBox();
          const rss = svg.querySelector('.series-rss').getBBox();
          return {yMax: +svg.dataset.yMax, plot: +svg.dataset.plotHeight, heap: heap.height,
                  rss: rss.height, width: svg.getBoundingClientRect().width};
        }""",
    )
    # The heap line's drawn height, in bytes, is its rise: 100 MiB within 10%.
    drawn = chart["heap"] * chart["yMax"] / chart["plot"]
    assert abs(drawn - BIG) <= 0.10 * BIG
    assert chart["rss"] * chart["yMax"] / chart["plot"] >= 0.9 * BIG
    assert chart["width"] > 500
    frames = page.eval_on_selector_all("#heap-flame g.frame", "gs => gs.map(g => g.dataset.name)")
    assert "all live bytes" in frames
    assert page.inner_text("#facts").startswith("live ")
    # The 100 MiB block was freed: what the program still holds is the three timestamps it kept
    # in `marks` (small ints), and the page says so.
    leaked = page.inner_text("#leak-summary")
    assert leaked.endswith("from 3 stacks of the program still live.")
    assert int(leaked.split()[0].replace(",", "")) < 1024
    assert errors == [] and requests == [path.resolve().as_uri()]
    page.close()


def test_perf_report_html_on_a_heap_file(
    run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from aether_native.cli import main

    tracker, _, _ = run
    tracker.snapshot().save(tmp_path / "mem.aprof")
    status = main(["perf-report", "--input", str(tmp_path / "mem.aprof"), "--format", "html"])
    assert status == 0, capsys.readouterr().err
    text = (tmp_path / "mem.html").read_text()
    assert 'id="memory-chart"' in text and 'id="heap-flame"' in text and "<script" not in text
