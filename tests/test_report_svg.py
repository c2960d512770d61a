"""SVG flamegraph: valid XML, one <g> per frame with widths proportional to the known weights,
tooltips with the numbers, deterministic warm colours, nothing external; click-zoom in Chromium."""

from __future__ import annotations

import io
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from aether_perf import Frame, InvalidArgument, Profile, ProfileMeta, ThreadInfo
from aether_perf.report.svg import FRAME_HEIGHT, PADDING, frame_colour, write_svg

MS = 1_000_000
MAIN_TID, WORKER_TID = 4242, 17
SVG = "{http://www.w3.org/2000/svg}"


def known_profile(d_name: str = "d", extra: tuple[str, int] | None = None) -> Profile:
    """main>a 60%, main>b 30%, main>c>d 10% (100 samples of 10ms); the worker holds 10 of the a samples.

    ``extra`` adds one main>NAME sample of the given weight (ms).
    """
    frames = [
        Frame("main", "app.py", 10, 1),
        Frame("a", "app.py", 22, 20),
        Frame("b", "work/b.py", 5, 3),
        Frame("c", "app.py", 31, 30),
        Frame(d_name, "lib/d.py", 8, 7),
    ]
    stacks = [(0, 1), (0, 2), (0, 3, 4)]
    stack = [0] * 60 + [1] * 30 + [2] * 10
    tid = [WORKER_TID] * 10 + [MAIN_TID] * 90
    weight = [10 * MS] * 100
    if extra is not None:
        frames.append(Frame(extra[0], "x.py", 2, 1))
        stacks.append((0, 5))
        stack.append(3)
        tid.append(MAIN_TID)
        weight.append(extra[1] * MS)
    return Profile(
        frames,
        stacks,
        {MAIN_TID: ThreadInfo(MAIN_TID, "MainThread"), WORKER_TID: ThreadInfo(WORKER_TID, "worker-1")},
        stack=stack,
        tid=tid,
        time_ns=[10 * MS * i for i in range(len(stack))],
        weight_ns=weight,
        flags=[0] * len(stack),
        meta=ProfileMeta("cpu", 0.01, 1_790_000_000.0, 1.0, "3.12.1", len(stack), 0, "app.py"),
    )


def render(profile: Profile, **kwargs: Any) -> str:
    buffer = io.StringIO()
    write_svg(profile, buffer, **kwargs)
    return buffer.getvalue()


def frames_of(document: str) -> dict[str, dict[str, Any]]:
    """The frames by name: rect geometry, fill, title and shown text."""
    root = ET.fromstring(document)
    assert root.tag == f"{SVG}svg"
    result: dict[str, dict[str, Any]] = {}
    for g in root.iter(f"{SVG}g"):
        if g.get("class") != "frame":
            continue
        rect, title, text = g.find(f"{SVG}rect"), g.find(f"{SVG}title"), g.find(f"{SVG}text")
        assert rect is not None and title is not None and text is not None
        name = g.get("data-name")
        assert name is not None and name not in result
        result[name] = {
            "x": float(rect.get("x", "nan")),
            "y": float(rect.get("y", "nan")),
            "w": float(rect.get("width", "nan")),
            "fill": rect.get("fill"),
            "title": title.text or "",
            "text": text.text or "",
        }
    return result


def test_known_widths_and_titles() -> None:
    document = render(known_profile())
    frames = frames_of(document)
    assert set(frames) == {"all", "main", "a", "b", "c", "d"}
    span = 1200 - 2 * PADDING
    for name, share in {"all": 1.0, "main": 1.0, "a": 0.6, "b": 0.3, "c": 0.1, "d": 0.1}.items():
        assert frames[name]["w"] == pytest.approx(share * span, abs=0.01), name
    assert frames["a"]["x"] == pytest.approx(PADDING) and frames["b"]["x"] == pytest.approx(
        PADDING + 0.6 * span
    )
    # Flame orientation: the root at the bottom, each callee one row above its caller.
    assert frames["all"]["y"] - frames["main"]["y"] == FRAME_HEIGHT
    assert frames["c"]["y"] - frames["d"]["y"] == FRAME_HEIGHT
    assert frames["a"]["title"] == "a (app.py:20)\ntotal 600ms, 60.0%; self 600ms, 60.0%; 60 samples"
    assert frames["c"]["title"] == "c (app.py:30)\ntotal 100ms, 10.0%; self 0s, 0.0%; 10 samples"
    assert frames["all"]["title"].startswith("all\ntotal 1s, 100.0%")
    assert frames["a"]["text"] == "a" and frames["all"]["text"] == "all (1s, 100 samples)"
    root = ET.fromstring(document)
    assert root.get("width") == "1200"
    title = root.find(f"{SVG}text[@id='title']")
    assert title is not None and title.text == "Flame graph: aether cpu profile of app.py"


def test_one_thread_and_width() -> None:
    frames = frames_of(render(known_profile(), thread=WORKER_TID, width=600))
    assert set(frames) == {"all", "main", "a"}
    assert frames["a"]["w"] == pytest.approx(600 - 2 * PADDING)
    assert "100ms, 100.0%" in frames["a"]["title"]
    main = frames_of(render(known_profile(), thread=MAIN_TID))
    assert main["a"]["w"] == pytest.approx(50 / 90 * (1200 - 2 * PADDING), abs=0.01)
    with pytest.raises(InvalidArgument):
        render(known_profile(), thread=999)
    with pytest.raises(InvalidArgument):
        render(known_profile(), width=10)
    with pytest.raises(InvalidArgument):
        render(known_profile(), min_width_px=-1)


def test_min_width_and_truncation() -> None:
    # One extra 1ms sample: 1/1001 of 1180px is 1.18px.
    tiny = known_profile(extra=("tiny_function", 1))
    assert frames_of(render(tiny))["tiny_function"]["w"] == pytest.approx(1180 / 1001, abs=0.01)
    assert "tiny_function" not in frames_of(render(tiny, min_width_px=1.2))
    assert "tiny_function" in frames_of(render(tiny, min_width_px=1.1))
    long_name = "a_really_long_function_name_" * 4
    frames = frames_of(render(known_profile(d_name=long_name), width=400))
    d = frames[long_name]
    assert d["text"].endswith("..") and len(d["text"]) < len(long_name)
    assert len(d["text"]) * 0.61 * 11 + 6 <= d["w"]  # the label fits its frame
    assert long_name in d["title"]  # the tooltip keeps the whole name


def test_colours_deterministic_and_warm() -> None:
    first = frames_of(render(known_profile()))
    second = frames_of(render(known_profile(), thread=MAIN_TID, width=800))
    for name in ("main", "a", "b"):
        assert first[name]["fill"] == second[name]["fill"] == frame_colour(name)
        r, g, b = (int(v) for v in re.findall(r"\d+", first[name]["fill"]))
        assert r >= 205 and 80 <= g <= 230 and b <= 70
    assert len({first[name]["fill"] for name in ("main", "a", "b", "c", "d")}) == 5


def test_hostile_names_valid_xml_and_nothing_external(tmp_path: Path) -> None:
    evil = 'x<y & "z"\x01\x1f]]></script>\udcff'
    path = tmp_path / "graph.svg"
    write_svg(known_profile(d_name=evil), path)
    document = path.read_text(encoding="utf-8")
    frames = frames_of(document)  # parses as XML despite the name
    (name,) = set(frames) - {"all", "main", "a", "b", "c"}
    assert name == 'x<y & "z"\\u0001\\u001f]]></script>\\udcff'
    assert name in frames[name]["title"]
    assert re.findall(r"https?:[^\"' ]*", document) == ["http://www.w3.org/2000/svg"]
    assert re.findall(r"url\(([^)]*)\)", document) == ["#background"]
    assert "href" not in document
    assert document == render(known_profile(d_name=evil))  # a stream gets the same bytes
    assert os.listdir(tmp_path) == ["graph.svg"]


def test_empty_profile() -> None:
    empty = Profile(
        [],
        [],
        {},
        stack=[],
        tid=[],
        time_ns=[],
        weight_ns=[],
        flags=[],
        meta=ProfileMeta("wall", 0.01, 0.0, 0.0, "3.12.1", 0, 0),
    )
    document = render(empty)
    assert frames_of(document) == {}
    assert "no samples" in document


def test_click_zoom_in_browser(browser: Any, tmp_path: Path) -> None:
    path = tmp_path / "graph.svg"
    write_svg(known_profile(), path)
    page = browser.new_page(viewport={"width": 1200, "height": 300})
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(r.url))
    page.goto(path.resolve().as_uri())

    def width(name: str) -> float:
        return float(page.locator(f'g.frame[data-name="{name}"] rect').get_attribute("width"))

    assert width("a") == pytest.approx(708)
    page.click('g.frame[data-name="c"]')
    assert width("c") == pytest.approx(1180) and width("d") == pytest.approx(1180)
    assert page.locator('g.frame[data-name="a"]').evaluate("g => g.style.display") == "none"
    page.locator('g.frame[data-name="d"]').hover()
    assert "d (lib/d.py:7): total 100ms, 10.0%" in str(page.text_content("#details"))
    page.click("#unzoom")
    assert width("a") == pytest.approx(708) and width("c") == pytest.approx(118)
    assert errors == [] and requests == [path.resolve().as_uri()]
    page.close()
