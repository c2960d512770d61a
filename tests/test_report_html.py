"""HTML report: the embedded numbers against hand-built ground truth, then the page in a real
headless Chromium (Debian's package, driven by playwright): what renders, what the controls do,
no console errors and no network request at all.

The known profile (10ms samples, 1s long): MainThread runs main>a for 50 samples in the first
half, then main>b for 30 and main>c>d for 10 in the second half; worker-1 runs main>a for 10
samples in the first half. All threads: a 60%, b 30%, c>d 10%; the first half is all a.
"""

from __future__ import annotations

import io
import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aether_perf import Frame, Profile, ProfileMeta, ThreadInfo
from aether_perf.model import FLAG_IDLE, Span
from aether_perf.report.html import write_html

MS = 1_000_000
MAIN_TID, WORKER_TID = 4242, 17
ORIGIN = 10**12  # the profile's CLOCK_MONOTONIC start
EVIL = "</script><script>window.pwned=1</script><!--&amp;"


def known_profile(*, base: bool = False, evil: bool = False) -> Profile:
    """The profile of the module doc; ``base`` swaps a and b (a 30%, b 60%, c>d 10%, one thread)."""
    frames = [
        Frame("main", "app.py", 10, 1),
        Frame("a", "app.py", 22, 20),
        Frame("b", "work/b.py", 5, 3),
        Frame("c", "app.py", 31, 30),
        Frame(EVIL if evil else "d", "lib/d.py", 8, 7),
    ]
    stacks = [(0, 1), (0, 2), (0, 3, 4)]
    rows: list[tuple[int, int, int]] = []
    if base:
        rows += [(0, MAIN_TID, 5 * MS + 10 * MS * i) for i in range(30)]
        rows += [(1, MAIN_TID, 305 * MS + 10 * MS * i) for i in range(60)]
        rows += [(2, MAIN_TID, 905 * MS + 10 * MS * i) for i in range(10)]
    else:
        rows += [(0, MAIN_TID, 5 * MS + 10 * MS * i) for i in range(50)]
        rows += [(0, WORKER_TID, 5 * MS + 20 * MS * i) for i in range(10)]
        rows += [(1, MAIN_TID, 505 * MS + 10 * MS * i) for i in range(30)]
        rows += [(2, MAIN_TID, 805 * MS + 10 * MS * i) for i in range(10)]
    stack, tid, times = zip(*rows, strict=True)
    return Profile(
        frames,
        stacks,
        {MAIN_TID: ThreadInfo(MAIN_TID, "MainThread"), WORKER_TID: ThreadInfo(WORKER_TID, "worker-1")},
        stack=stack,
        tid=tid,
        time_ns=times,
        weight_ns=[10 * MS] * len(rows),
        flags=[0] * len(rows),
        meta=ProfileMeta(
            "cpu",
            0.01,
            1_790_000_000.0,
            1.0,
            "3.12.1",
            len(rows),
            0,
            "app.py",
            {"start_monotonic_ns": ORIGIN},
        ),
    )


def known_spans() -> list[Span]:
    return [
        Span("request", MAIN_TID, ORIGIN + 100 * MS, ORIGIN + 600 * MS),
        Span("parse", MAIN_TID, ORIGIN + 150 * MS, ORIGIN + 300 * MS, depth=1),
        Span("job", WORKER_TID, ORIGIN + 0, ORIGIN + 200 * MS),
        Span("long ago", WORKER_TID, ORIGIN - 10 * 10**9, ORIGIN - 9 * 10**9),
    ]


def embedded(page: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="aether-data">(.*?)</script>', page, re.S)
    assert match is not None
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def node_of(data: dict[str, Any], *names: str) -> int:
    """The node id of the path ``names`` (root first)."""
    node = 0
    for name in names:
        (node,) = [
            n
            for n, (p, f) in enumerate(zip(data["nodes"]["parent"], data["nodes"]["func"], strict=True))
            if p == node and f >= 0 and data["functions"][f][0] == name
        ]
    return node


def cell_sums(
    data: dict[str, Any], thread: int | None = None, cells: range | None = None
) -> dict[int, list[int]]:
    """Per node ``[weight, samples]`` summed over the threads (all, or index ``thread``) and cells."""
    sums: dict[int, list[int]] = {}
    for index, th in enumerate(data["timeline"]["threads"]):
        if thread is not None and index != thread:
            continue
        offsets = th["offsets"]
        chosen = cells if cells is not None else range(len(offsets) - 1)
        for cell in chosen:
            for k in range(offsets[cell], offsets[cell + 1]):
                entry = sums.setdefault(th["node"][k], [0, 0])
                entry[0] += th["weight"][k]
                entry[1] += th["samples"][k]
    return sums


# ---------------------------------------------------------------- the embedded data


def test_embedded_numbers(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    write_html(known_profile(), path)
    data = embedded(path.read_text(encoding="utf-8"))
    assert data["title"] == "aether cpu profile of app.py"
    assert data["meta"]["samples"] == 100 and data["meta"]["total_ns"] == 1000 * MS
    assert sorted(f[0] for f in data["functions"]) == ["a", "b", "c", "d", "main"]
    assert [(t["tid"], t["name"], t["total_ns"], t["samples"]) for t in data["threads"]] == [
        (MAIN_TID, "MainThread", 900 * MS, 90),
        (WORKER_TID, "worker-1", 100 * MS, 10),
    ]
    a, b, d = node_of(data, "main", "a"), node_of(data, "main", "b"), node_of(data, "main", "c", "d")
    assert cell_sums(data) == {a: [600 * MS, 60], b: [300 * MS, 30], d: [100 * MS, 10]}
    assert cell_sums(data, thread=1) == {a: [100 * MS, 10]}
    timeline = data["timeline"]
    assert timeline["span_ns"] == 1000 * MS and timeline["buckets"] == 200 and timeline["cell_span"] == 1
    assert cell_sums(data, cells=range(100)) == {a: [600 * MS, 60]}  # first half: only a
    assert cell_sums(data, cells=range(100, 200)) == {b: [300 * MS, 30], d: [100 * MS, 10]}
    busy = np.array([t["busy"] for t in timeline["threads"]])
    assert busy.sum() == 1000 * MS and busy[:, :100].sum() == 600 * MS
    assert timeline["has_idle"] is False and data["spans"] is None and data["diff"] is None


def test_idle_samples_are_marked() -> None:
    profile = known_profile()
    flags = np.where(profile.tid == WORKER_TID, FLAG_IDLE, 0)
    idle = Profile(
        profile.frames,
        profile.stacks,
        profile.threads,
        stack=profile.stack,
        tid=profile.tid,
        time_ns=profile.time_ns,
        weight_ns=profile.weight_ns,
        flags=flags,
        meta=profile.meta,
    )
    buffer = io.StringIO()
    write_html(idle, buffer)
    worker = embedded(buffer.getvalue())["timeline"]["threads"][1]
    assert sum(worker["idle"]) == 100 * MS and sum(worker["busy"]) == 0
    assert set(worker["idle_flag"]) == {1}


def test_diff_and_spans_data() -> None:
    buffer = io.StringIO()
    write_html(known_profile(), buffer, base=known_profile(base=True), spans=known_spans(), title="T")
    data = embedded(buffer.getvalue())
    diff = data["diff"]
    assert diff["total_ns"] == 1000 * MS and diff["samples"] == 100 and diff["gone_pct"] == 0
    pct = diff["node_pct"]
    assert pct[0] == 100 and pct[node_of(data, "main")] == 100
    assert pct[node_of(data, "main", "a")] == 30 and pct[node_of(data, "main", "b")] == 60
    assert pct[node_of(data, "main", "c")] == 10 and pct[node_of(data, "main", "c", "d")] == 10
    spans = data["spans"]
    assert spans["aligned"] is True and spans["total"] == 4 and spans["outside"] == 1
    rows = {spans["names"][r[4]]: r for r in spans["spans"]}
    assert set(rows) == {"request", "parse", "job"}
    assert rows["request"][1:4] == [0, 100 * MS, 600 * MS]
    assert rows["parse"][1:4] == [1, 150 * MS, 300 * MS]
    assert spans["tracks"][rows["request"][0]] == f"MainThread ({MAIN_TID})"
    assert spans["tracks"][rows["job"][0]] == f"worker-1 ({WORKER_TID})"


def test_self_contained_and_escaped(tmp_path: Path) -> None:
    path = tmp_path / "evil.html"
    write_html(known_profile(evil=True), path, title="<b>x</b> & y")
    page = path.read_text(encoding="utf-8")
    assert "http:" not in page and "https:" not in page and "//cdn" not in page
    assert not re.search(r"""\s(src|href)\s*=""", page)
    assert "<title>&lt;b&gt;x&lt;/b&gt; &amp; y</title>" in page
    # The name cannot close the data element: exactly the page's own two script elements.
    assert page.count("</script>") == 2 and page.lower().count("<script") == 2
    data = embedded(page)
    assert EVIL in [f[0] for f in data["functions"]]
    # A stream gets the same page; a path write leaves no temporary file behind.
    buffer = io.StringIO()
    write_html(known_profile(evil=True), buffer, title="<b>x</b> & y")
    assert buffer.getvalue() == page
    assert os.listdir(tmp_path) == ["evil.html"]


def big_profile(samples: int = 1_000_000, stacks: int = 400) -> Profile:
    rng = np.random.default_rng(7)
    frames = [
        Frame(f"pkg.mod{i % 9}.function_{i}", f"/srv/app/pkg/mod{i % 9}.py", 10 + i, 5 + i)
        for i in range(150)
    ]
    table = [
        tuple([0, *(int(x) for x in rng.integers(1, 150, int(rng.integers(3, 30))))]) for _ in range(stacks)
    ]
    threads = {100 + t: ThreadInfo(100 + t, "MainThread" if t == 0 else f"worker-{t}") for t in range(4)}
    return Profile(
        frames,
        table,
        threads,
        stack=rng.integers(0, stacks, samples),
        tid=100 + rng.integers(0, 4, samples),
        time_ns=np.sort(rng.integers(0, 300 * 10**9, samples)),
        weight_ns=rng.integers(900_000, 1_100_000, samples),
        flags=np.zeros(samples, dtype=np.uint8),
        meta=ProfileMeta("cpu", 0.001, 1_790_000_000.0, 300.0, "3.12.1", samples, 0, "big.py"),
    )


@pytest.fixture(scope="module")
def big_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float, Profile]:
    profile = big_profile()
    path = tmp_path_factory.mktemp("big") / "big.html"
    started = time.perf_counter()
    write_html(profile, path)
    return path, time.perf_counter() - started, profile


def test_million_samples_small_and_fast(big_report: tuple[Path, float, Profile]) -> None:
    path, seconds, profile = big_report
    assert seconds < 15, f"writing the report took {seconds:.1f}s"
    assert path.stat().st_size < 5_000_000
    data = embedded(path.read_text(encoding="utf-8"))
    # Aggregated, never per sample, and nothing lost: every sample and nanosecond is in the cells.
    sums = cell_sums(data)
    assert sum(s[1] for s in sums.values()) == len(profile)
    assert sum(s[0] for s in sums.values()) == profile.total_weight_ns
    entries = sum(len(t["node"]) for t in data["timeline"]["threads"])
    assert entries <= 150_000 < len(profile)


# ---------------------------------------------------------------- in a real browser


class Page:
    """A loaded report with everything the browser reported about it."""

    def __init__(self, browser: Any, path: Path, width: int = 1280) -> None:
        self.url = path.resolve().as_uri()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page = browser.new_page(viewport={"width": width, "height": 900})
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(self.url)
        self.page.wait_for_selector("body[data-ready]", timeout=60_000)

    def check_clean(self) -> None:
        assert self.errors == []
        assert self.requests == [self.url]

    def width(self, selector: str = "#flame") -> float:
        box = self.page.locator(selector).bounding_box()
        assert box is not None
        return float(box["width"])

    def frames(self) -> dict[str, dict[str, float]]:
        """Drawn frames by name: their box relative to the flamegraph."""
        found: dict[str, dict[str, float]] = self.page.evaluate(
            """() => {
                const origin = document.getElementById('flame').getBoundingClientRect();
                const out = {};
                for (const el of document.querySelectorAll('#flame .fr')) {
                    const r = el.getBoundingClientRect();
                    out[el.dataset.name] = {x: r.left - origin.left, y: r.top - origin.top, w: r.width};
                }
                return out;
            }"""
        )
        return found

    def frame(self, name: str) -> Any:
        return self.page.locator(f'#flame .fr[data-name="{name}"]')

    def colour(self, name: str) -> tuple[int, ...]:
        text = self.frame(name).evaluate("e => getComputedStyle(e).backgroundColor")
        return tuple(int(v) for v in re.findall(r"\d+", text)[:3])

    def status(self) -> str:
        return str(self.page.text_content("#status"))

    def table(self) -> list[str]:
        return list(
            self.page.eval_on_selector_all("#top-body tr td.fn", "els => els.map(e => e.textContent)")
        )

    def close(self) -> None:
        self.page.close()


@pytest.fixture
def report(browser: Any, tmp_path: Path) -> Iterator[Page]:
    path = tmp_path / "known.html"
    write_html(known_profile(), path, spans=known_spans())
    page = Page(browser, path)
    yield page
    page.check_clean()
    page.close()


def close_to(actual: float, expected: float, tolerance: float = 1.5) -> bool:
    return abs(actual - expected) <= tolerance


def test_frames_proportional_to_weights(report: Page) -> None:
    width = report.width()
    frames = report.frames()
    assert set(frames) == {"all", "main", "a", "b", "c", "d"}
    for name, share in {"all": 1.0, "main": 1.0, "a": 0.6, "b": 0.3, "c": 0.1, "d": 0.1}.items():
        assert close_to(frames[name]["w"], share * width), (name, frames[name], width)
    # Left-heavy icicle: a, then b, then c from the left; root on top, d below c.
    assert close_to(frames["a"]["x"], 0) and close_to(frames["b"]["x"], 0.6 * width)
    assert close_to(frames["c"]["x"], 0.9 * width) and close_to(frames["d"]["x"], frames["c"]["x"])
    assert frames["all"]["y"] < frames["main"]["y"] < frames["a"]["y"] < frames["d"]["y"]
    assert "1s in 100 samples" in report.status()
    report.page.click("#view-flame")  # root at the bottom
    flipped = report.frames()
    assert flipped["all"]["y"] > flipped["main"]["y"] > flipped["a"]["y"] > flipped["d"]["y"]
    # Text stays readable: 12px monospace labels inside the frames.
    assert report.frame("a").evaluate("e => getComputedStyle(e).fontSize") == "12px"
    assert report.frame("a").inner_text() == "a"


def test_left_heavy_toggle(browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "base.html"
    write_html(known_profile(base=True), path)  # a 30%, b 60%
    page = Page(browser, path)
    width = page.width()
    frames = page.frames()
    assert close_to(frames["b"]["x"], 0) and close_to(frames["a"]["x"], 0.6 * width)
    page.page.click("#left-heavy")  # off: alphabetical
    frames = page.frames()
    assert close_to(frames["a"]["x"], 0) and close_to(frames["b"]["x"], 0.3 * width)
    page.check_clean()
    page.close()


def test_hover_tooltip(report: Page) -> None:
    report.frame("a").hover()
    tip = report.page.locator("#tooltip")
    assert tip.is_visible()
    text = tip.inner_text()
    assert "app.py:20" in text
    assert re.search(r"Total\s+600ms · 60\.0% · 60 samples", text), text
    assert re.search(r"Self\s+600ms · 60\.0% · 60 samples", text), text
    report.frame("c").hover()
    text = tip.inner_text()
    assert "app.py:30" in text
    assert re.search(r"Total\s+100ms · 10\.0% · 10 samples", text), text
    assert re.search(r"Self\s+0s · 0\.0% · 0 samples", text), text
    # The tooltip stays inside the window even for a frame at the right edge.
    box = report.frame("d").bounding_box()
    report.page.mouse.move(box["x"] + box["width"] - 2, box["y"] + 5)
    tip_box = tip.bounding_box()
    assert tip_box["x"] >= 0 and tip_box["x"] + tip_box["width"] <= 1280
    report.page.mouse.move(5, 5)
    assert not tip.is_visible()


def test_search_highlights_and_measures(report: Page) -> None:
    report.page.fill("#search", "b")
    assert report.page.text_content("#matched") == "Matched: 30.0% (300ms)"
    assert "match" in str(report.frame("b").get_attribute("class"))
    assert "dim" in str(report.frame("a").get_attribute("class"))
    assert report.colour("b") == (176, 79, 208)  # the highlight colour
    report.page.fill("#search", "^(a|d)$")  # a regular expression
    assert report.page.text_content("#matched") == "Matched: 70.0% (700ms)"
    report.page.fill("#search", "^(c|d)$")  # d under c counts once
    assert report.page.text_content("#matched") == "Matched: 10.0% (100ms)"
    report.page.fill("#search", "(")  # not a regex: a plain substring, no error
    assert report.page.text_content("#matched") == "Matched: 0.0% (0s)"
    report.page.fill("#search", "")
    assert report.page.text_content("#matched") == ""
    assert "match" not in str(report.frame("b").get_attribute("class"))


def test_click_zoom_and_reset(report: Page) -> None:
    width = report.width()
    report.frame("c").click()
    frames = report.frames()
    assert close_to(frames["c"]["w"], width) and close_to(frames["d"]["w"], width)
    assert "a" not in frames and "b" not in frames
    assert "zoomed: main › c" in str(report.page.text_content("#crumbs"))
    report.frame("d").hover()
    assert "Of zoomed" in report.page.locator("#tooltip").inner_text()
    report.page.click("#reset-zoom")
    assert close_to(report.frames()["a"]["w"], 0.6 * width)
    report.frame("a").click()
    report.page.keyboard.press("Escape")
    assert close_to(report.frames()["b"]["w"], 0.3 * width)


def test_thread_selector(report: Page) -> None:
    width = report.width()
    options = report.page.eval_on_selector_all("#thread option", "os => os.map(o => o.textContent)")
    assert options == [
        "All threads (2)",
        f"MainThread ({MAIN_TID}) – 90.0%",
        f"worker-1 ({WORKER_TID}) – 10.0%",
    ]
    report.page.select_option("#thread", "1")
    assert "100ms in 10 samples" in report.status()
    frames = report.frames()
    assert set(frames) == {"all", "main", "a"} and close_to(frames["a"]["w"], width)
    report.page.select_option("#thread", "0")
    assert "900ms in 90 samples" in report.status()
    assert close_to(report.frames()["a"]["w"], 50 / 90 * width)
    assert report.table()[0] == "a"
    report.frame("b").hover()
    assert re.search(r"Total\s+300ms · 33\.3%", report.page.locator("#tooltip").inner_text())
    report.page.select_option("#thread", "-1")
    assert "1s in 100 samples" in report.status()


def drag(page: Page, start: float, end: float) -> None:
    box = page.page.locator("#timeline").bounding_box()
    y = box["y"] + box["height"] / 2
    page.page.mouse.move(box["x"] + start * box["width"], y)
    page.page.mouse.down()
    page.page.mouse.move(box["x"] + end * box["width"], y, steps=5)
    page.page.mouse.up()


def test_timeline_selection(report: Page) -> None:
    width = report.width()
    drag(report, 0.0, 0.5)
    assert "600ms in 60 samples" in report.status()
    assert "0s – 500ms" in report.status()
    frames = report.frames()
    assert set(frames) == {"all", "main", "a"} and close_to(frames["a"]["w"], width)
    assert report.table() == ["a", "main"]
    assert report.page.locator("#timeline-sel").is_visible()
    drag(report, 0.5, 1.0)  # the second half: b and c>d, no a
    assert "400ms in 40 samples" in report.status()
    frames = report.frames()
    assert set(frames) == {"all", "main", "b", "c", "d"}
    assert close_to(frames["b"]["w"], 0.75 * width)
    report.page.click("#clear-range")
    assert "1s in 100 samples" in report.status()


def test_span_track(report: Page) -> None:
    track = report.page.locator("#spans")
    assert track.is_visible()
    box = track.bounding_box()
    request = report.page.locator(".span", has_text="request")
    span_box = request.bounding_box()
    assert close_to(span_box["x"] - box["x"], 0.1 * box["width"])
    assert close_to(span_box["width"], 0.5 * box["width"])
    assert report.page.locator(".span").count() == 3  # the span before the profile is left out
    request.hover()
    assert "500ms" in report.page.locator("#tooltip").inner_text()
    request.click()  # selects 100ms..600ms: main a 40, worker a 5, main b 10 samples
    assert "550ms in 55 samples" in report.status()
    assert "100ms – 600ms" in report.status()


def test_table_sorts(report: Page) -> None:
    assert report.table() == ["a", "b", "d", "c", "main"]  # self descending
    headers = report.page.locator("#top-head th")
    assert headers.nth(2).get_attribute("aria-sort") == "descending"
    report.page.click('#top-head th[data-key="total"]')
    assert report.table() == ["main", "a", "b", "d", "c"]
    report.page.click('#top-head th[data-key="total"]')
    assert report.table() == ["d", "c", "b", "a", "main"]  # ties: more self time first
    assert report.page.locator('#top-head th[data-key="total"]').get_attribute("aria-sort") == "ascending"
    report.page.click('#top-head th[data-key="name"]')
    assert report.table() == ["a", "b", "c", "d", "main"]
    cells = report.page.eval_on_selector_all(
        "#top-body tr:first-child td", "tds => tds.map(t => t.textContent)"
    )
    assert cells == ["a", "app.py:20", "600ms", "60.0%", "600ms", "60.0%", "60", "60"]
    report.page.click("#top-body tr:nth-child(2)")  # a row click searches its function
    assert report.page.input_value("#search") == "^b$"
    assert report.page.text_content("#matched") == "Matched: 30.0% (300ms)"


def test_diff_page_colours(browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "diff.html"
    write_html(known_profile(), path, base=known_profile(base=True))
    page = Page(browser, path)
    assert page.page.locator("#diff-legend").is_visible()
    red, blue, neutral = page.colour("a"), page.colour("b"), page.colour("main")
    assert red[0] > red[1] + 100 and red[0] > red[2] + 100, red  # a grew 30% -> 60%
    assert blue[2] > blue[0] + 100 and blue[2] > blue[1] + 50, blue  # b shrank 60% -> 30%
    assert neutral[0] == neutral[1] == neutral[2], neutral  # main: 100% in both
    assert page.colour("d")[0] == page.colour("d")[2]  # d: 10% in both
    page.frame("a").hover()
    tip = page.page.locator("#tooltip").inner_text()
    assert "30.0% → now 60.0%" in tip and "+30.0 pp" in tip
    columns = page.page.eval_on_selector_all("#top-head th", "ths => ths.map(t => t.textContent)")
    assert columns[-2:] == ["Δ self", "Δ total"]
    first = page.page.eval_on_selector_all(
        "#top-body tr:first-child td", "tds => tds.map(t => t.textContent)"
    )
    assert first[0] == "a" and first[-2:] == ["+30.0 pp", "+30.0 pp"]
    page.check_clean()
    page.close()


def test_hostile_names_stay_text(browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "evil.html"
    write_html(known_profile(evil=True), path)
    page = Page(browser, path)
    assert page.page.evaluate("() => window.pwned") is None
    assert page.frame("c").count() == 1
    names = page.page.eval_on_selector_all("#flame .fr", "els => els.map(e => e.dataset.name)")
    assert EVIL in names
    assert EVIL in page.table()
    page.check_clean()
    page.close()


def test_million_sample_page_renders(browser: Any, big_report: tuple[Path, float, Profile]) -> None:
    path, _seconds, profile = big_report
    page = Page(browser, path, width=1400)
    assert f"{len(profile):,} samples" in page.status()
    drawn = page.page.locator("#flame .fr").count()
    assert 100 < drawn < 20_000
    page.page.select_option("#thread", "2")
    assert "worker-2 (102)" in page.status()
    drag(page, 0.25, 0.5)
    assert " in " in page.status() and "worker-2" in page.status()
    page.page.fill("#search", "function_1")
    assert str(page.page.text_content("#matched")).startswith("Matched: ")
    page.check_clean()
    page.close()


def test_idle_toggle_in_browser(browser: Any, tmp_path: Path) -> None:
    profile = known_profile()
    idle = Profile(
        profile.frames,
        profile.stacks,
        profile.threads,
        stack=profile.stack,
        tid=profile.tid,
        time_ns=profile.time_ns,
        weight_ns=profile.weight_ns,
        flags=np.where(profile.tid == WORKER_TID, FLAG_IDLE, 0),
        meta=profile.meta,
    )
    path = tmp_path / "idle.html"
    write_html(idle, path)
    page = Page(browser, path)
    assert page.page.locator("#include-idle").is_visible()
    assert "1s in 100 samples" in page.status()
    page.page.click("#include-idle")  # leave the worker's idle samples out
    assert "900ms in 90 samples" in page.status() and "idle excluded" in page.status()
    assert close_to(page.frames()["a"]["w"], 50 / 90 * page.width())
    page.check_clean()
    page.close()


def test_empty_profile_page(browser: Any, tmp_path: Path) -> None:
    empty = Profile(
        [],
        [],
        {},
        stack=[],
        tid=[],
        time_ns=[],
        weight_ns=[],
        flags=[],
        meta=ProfileMeta("cpu", 0.001, 0.0, 0.0, "3.12.1", 0, 0),
    )
    path = tmp_path / "empty.html"
    write_html(empty, path)
    page = Page(browser, path)
    assert page.page.text_content("#flame") == "No samples in this selection."
    assert not page.page.locator("#include-idle").is_visible()
    drag(page, 0.1, 0.4)
    assert "0s in 0 samples" in page.status()
    page.check_clean()
    page.close()
