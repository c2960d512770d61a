"""The benchmark HTML report on hand-built runs of known values, then in a real headless Chromium
(Debian's package, driven by playwright): what renders, no script, no network request at all.

Ground truth: benchmark ``parse`` has 6 processes x 5 values around 10us (within 1.5%) and one
50us outlier; the baseline run has the same shape around 8us (so both benchmarks are 25% slower,
a regression); two older saved runs (9us, 8.5us) make the history.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aether_perf.bench.comparison import compare
from aether_perf.bench.report_html import render_html
from aether_perf.bench.results import BenchmarkResult, Identity, ProcessRun, Suite

EVIL = "</svg></script><script>window.pwned=1</script><!--&amp;"
IDENTITY = Identity(
    "vm/CPU/2cpu", "vm", "CPU", 2, "Linux", "CPython", "3.12.1", "/usr/bin/python3", "abc123", "main", False
)


def result(bench_id: str, centre: float, outlier: bool = False) -> BenchmarkResult:
    processes = []
    for index in range(6):
        values = [centre * (1 + 0.001 * k + 0.002 * index) for k in range(5)]
        if outlier and index == 0:
            values[2] = centre * 5
        processes.append(ProcessRun(index + 1, values, [0] * 5, [0] * 5, [False] * 5, 0))
    return BenchmarkResult(bench_id, bench_id, None, "bench_x.py", 100, processes)


def suite(name: str, created: str, centre: float, outlier: bool = False) -> Suite:
    return Suite(name, created, IDENTITY, {}, [result("parse", centre, outlier), result(EVIL, centre)])


def test_page_content_without_a_browser() -> None:
    head = suite("head", "2026-01-04T00:00:00+00:00", 10e-6, outlier=True)
    base = suite("base", "2026-01-03T00:00:00+00:00", 8e-6)
    history = [
        suite("old1", "2026-01-01T00:00:00+00:00", 9e-6),
        suite("old2", "2026-01-02T00:00:00+00:00", 8.5e-6),
    ]
    page = render_html(head, compare(base, head), base, [*history, base])
    assert page.count('<svg class="dist"') == 2
    assert page.count('<circle class="value') == 2 * 2 * 30  # two rows (head, base) x 30 values each
    assert page.count('class="value outlier"') == 1
    assert page.count('<svg class="history"') == 2
    assert page.count('<circle class="run"') == 2 * 4  # old1, old2, base, head
    assert "<script" not in page.replace("&lt;script", "")
    assert "x1.250" in page  # 10us against 8us
    assert page.count('<td class="bad">regression</td>') == 2


def test_renders_in_chromium_offline(browser: Any, tmp_path: Path) -> None:
    head = suite("head", "2026-01-04T00:00:00+00:00", 10e-6, outlier=True)
    base = suite("base", "2026-01-03T00:00:00+00:00", 8e-6)
    history = [suite("old1", "2026-01-01T00:00:00+00:00", 9e-6)]
    path = tmp_path / "report.html"
    path.write_text(render_html(head, compare(base, head), base, history), encoding="utf-8")
    errors: list[str] = []
    requests: list[str] = []
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.resolve().as_uri())
    try:
        assert requests == [path.resolve().as_uri()]
        assert errors == []
        assert page.evaluate("window.pwned") is None
        assert page.locator("svg.dist").count() == 2
        box = page.locator("svg.dist").first.bounding_box()
        assert box is not None and box["width"] > 600 and box["height"] > 60
        # every value drawn inside the plot, the outlier far right of the others
        xs = page.evaluate(
            "[...document.querySelector('svg.dist').querySelectorAll('circle.value')]"
            ".map(c => +c.getAttribute('cx'))"
        )
        assert len(xs) == 60 and all(70 <= x <= 700 for x in xs)
        outlier_x = page.evaluate("+document.querySelector('circle.outlier').getAttribute('cx')")
        assert outlier_x == max(xs) and outlier_x > sorted(xs)[-2] + 300
        assert page.locator("svg.history").count() == 2
        assert page.locator("svg.history").first.locator("circle.run").count() == 2  # old1, head
        assert page.locator("table.comparison td.bad").count() == 2  # both 25% slower: regressions
        assert EVIL in page.locator("section.bench h3").nth(1).inner_text()
    finally:
        page.close()
