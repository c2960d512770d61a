"""The HTML page: the template, the stylesheet and the script of ``assets/``, and the data, inlined.

Nothing on the page is loaded from anywhere: the style and the script are inlined, the data is a
``<script type="application/json">`` block, and a Content-Security-Policy forbids every fetch. In
the JSON every ``<``, ``>`` and ``&`` is written as a ``\\u00XX`` escape, so no function name can
close the script element (``</script>``) or open a comment in it.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

from aether_perf.fileio import PathOrText, open_text_output
from aether_perf.model.profile import Profile
from aether_perf.model.span import Span
from aether_perf.report.html.payload import build_payload

__all__ = ["DATA_ELEMENT_ID", "embed_json", "render_html", "write_html"]

#: The id of the ``<script type="application/json">`` element that holds the data.
DATA_ELEMENT_ID = "aether-data"

_PLACEHOLDER = re.compile(r"\{\{(title|css|js|data)\}\}")
_JSON_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


@cache
def _asset(name: str) -> str:
    return resources.files("aether_perf.report.html").joinpath("assets", name).read_text(encoding="utf-8")


def embed_json(data: Any) -> str:
    """``data`` as JSON (ASCII) that is safe inside a ``<script>`` element."""
    text = json.dumps(data, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.translate(_JSON_ESCAPES)


def _fill(template: str, values: dict[str, str]) -> str:
    # One pass over the template: a value that contains "{{...}}" is never substituted again.
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def render_html(
    profile: Profile,
    *,
    title: str | None = None,
    base: Profile | None = None,
    spans: Sequence[Span] | None = None,
) -> str:
    """The report page as a string (see :func:`write_html`)."""
    payload = build_payload(profile, title=title, base=base, spans=spans)
    script = _asset("flamegraph.js")
    style = _asset("style.css")
    for name, text, end in (("flamegraph.js", script, "</script"), ("style.css", style, "</style")):
        if end in text.lower() or "<!--" in text:  # pragma: no cover - a guard on the shipped assets
            raise RuntimeError(f"asset {name} contains {end!r} or '<!--', which would break its element")
    page_title = str(payload["title"])
    try:
        page_title.encode("utf-8")
    except UnicodeEncodeError:
        page_title = page_title.encode("utf-8", "backslashreplace").decode("utf-8")
    return _fill(
        _asset("page.html"),
        {"title": html.escape(page_title), "css": style, "js": script, "data": embed_json(payload)},
    )


def write_html(
    profile: Profile,
    file: PathOrText,
    *,
    title: str | None = None,
    base: Profile | None = None,
    spans: Sequence[Span] | None = None,
) -> None:
    """Write the interactive flamegraph report of ``profile`` as one self-contained HTML file.

    ``file`` is a path (written atomically) or an open text file. ``title`` defaults to
    ``aether <mode> profile of <program>``. With ``base``, the flamegraph is differential: frames
    are red where their share of the profile grew since ``base`` and blue where it shrank. With
    ``spans`` (times on CLOCK_MONOTONIC; the profile's ``meta.extra["start_monotonic_ns"]`` is its
    time zero), the spans are drawn as a track under the timeline.
    """
    page = render_html(profile, title=title, base=base, spans=spans)
    with open_text_output(file) as handle:
        handle.write(page)
