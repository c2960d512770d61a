"""A static flamegraph as SVG, for pasting into documents (the look of flamegraph.pl and inferno).

The root (``all``) is at the bottom and callers below callees; a frame's width is its share of the
total weight, children are laid out heaviest first. Colours are a warm palette chosen by a hash of
the function name, so one function has one colour in every graph (and in the HTML report). Every
frame is a ``<g class="frame">`` holding a ``<title>`` (the tooltip: function, file:first_line,
total and self time and %, samples), a ``<rect>`` and a ``<text>`` truncated with ``..`` to fit.
Frames narrower than ``min_width_px`` are left out, with everything above them.

A small inline script (ignored where SVG scripts do not run, e.g. an ``<img>``) lets a viewer
click a frame to zoom into it, reset the zoom, and search by regular expression. The file refers
to nothing outside itself.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from aether_perf.analysis.calltree import CallNode, call_tree
from aether_perf.errors import InvalidArgument
from aether_perf.fileio import PathOrText, open_text_output
from aether_perf.model.profile import Profile
from aether_perf.report.html.payload import default_title
from aether_perf.units import format_duration

__all__ = ["FRAME_HEIGHT", "PADDING", "frame_colour", "write_svg"]

#: Height of one frame row, px.
FRAME_HEIGHT = 16
#: Left and right margin, px: frames span ``width - 2 * PADDING``.
PADDING = 10
_TOP = 56  # title, subtitle and the controls line
_BOTTOM = 28  # the details line
_FONT_SIZE = 11
_CHAR_WIDTH = 0.61 * _FONT_SIZE  # monospace advance
_FONT = "'DejaVu Sans Mono', Menlo, Consolas, 'Liberation Mono', monospace"
# Characters XML 1.0 does not allow, and lone surrogates (undecodable file names).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _fnv1a(text: str) -> int:
    """FNV-1a over UTF-16 code units (the HTML report's script hashes the same way)."""
    data = text.encode("utf-16-le", "surrogatepass")
    value = 0x811C9DC5
    for (unit,) in struct.iter_unpack("<H", data):
        value = ((value ^ unit) * 0x01000193) & 0xFFFFFFFF
    return value


def frame_colour(name: str) -> str:
    """The warm ``rgb(r,g,b)`` colour of the function ``name``: always the same for one name."""
    h = _fnv1a(name)
    v1, v2, v3 = (h & 0xFF) / 255, ((h >> 8) & 0xFF) / 255, ((h >> 16) & 0xFF) / 255
    return f"rgb({round(205 + 50 * v3)},{round(80 + 150 * v1)},{round(30 + 40 * v2)})"


def _xml(text: str) -> str:
    """``text`` fit for XML character data and attribute values."""
    text = _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _fit(label: str, width: float) -> str:
    """``label`` truncated with ``..`` to fit ``width`` px, or "" when not even 3 characters fit."""
    chars = int((width - 6) / _CHAR_WIDTH)
    if chars < 3:
        return ""
    return label if len(label) <= chars else label[: chars - 2] + ".."


def _pct(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def _ns(ns: int) -> str:
    return format_duration(ns / 1e9)


@dataclass(frozen=True, slots=True)
class _Box:
    node: CallNode
    x: float
    width: float
    depth: int


def _layout(root: CallNode, span: float, min_width: float) -> list[_Box]:
    boxes = [_Box(root, PADDING, span, 0)]
    scale = span / root.total_ns
    pending = [boxes[0]]
    while pending:
        parent = pending.pop()
        x = parent.x
        for child in parent.node.children.values():
            width = child.total_ns * scale
            if width >= min_width:
                box = _Box(child, x, width, parent.depth + 1)
                boxes.append(box)
                pending.append(box)
            x += width
    return boxes


def _tooltip(node: CallNode, whole: int, root: bool) -> str:
    name = "all" if root else node.function
    where = f" ({node.file}:{node.first_line})" if node.file else ""
    return (
        f"{name}{where}\ntotal {_ns(node.total_ns)}, {_pct(node.total_ns, whole):.1f}%; "
        f"self {_ns(node.self_ns)}, {_pct(node.self_ns, whole):.1f}%; {node.samples:,} samples"
    )


_SCRIPT = """
(function () {
  var svg = document.documentElement, pad = %(pad)d, full = %(span)s, cw = %(cw)s;
  var frames = Array.prototype.slice.call(document.querySelectorAll('g.frame'));
  var details = document.getElementById('details'), reset = document.getElementById('unzoom');
  var matched = document.getElementById('matched');
  function num(g, k) { return parseFloat(g.getAttribute(k)); }
  function fit(label, w) {
    var n = Math.floor((w - 6) / cw);
    return n < 3 ? '' : label.length <= n ? label : label.slice(0, n - 2) + '..';
  }
  function place(g, x, w) {
    var r = g.querySelector('rect'), t = g.querySelector('text');
    r.setAttribute('x', x.toFixed(2)); r.setAttribute('width', w.toFixed(2));
    t.setAttribute('x', (x + 3).toFixed(2)); t.textContent = fit(g.getAttribute('data-label'), w);
  }
  function zoom(target) {
    var zx = num(target, 'data-x'), zw = num(target, 'data-w'), zd = num(target, 'data-depth');
    var scale = full / zw;
    frames.forEach(function (g) {
      var x = num(g, 'data-x'), w = num(g, 'data-w'), d = num(g, 'data-depth');
      var inside = x >= zx - 1e-6 && x + w <= zx + zw + 1e-6;
      var around = x <= zx + 1e-6 && x + w >= zx + zw - 1e-6;
      g.classList.remove('parent');
      if (d >= zd && inside) { g.style.display = ''; place(g, pad + (x - zx) * scale, w * scale); }
      else if (d < zd && around) { g.style.display = ''; g.classList.add('parent'); place(g, pad, full); }
      else { g.style.display = 'none'; }
    });
    reset.style.opacity = 1;
  }
  function unzoom() {
    frames.forEach(function (g) {
      g.style.display = ''; g.classList.remove('parent'); place(g, num(g, 'data-x'), num(g, 'data-w'));
    });
    reset.style.opacity = 0;
  }
  frames.forEach(function (g) {
    g.addEventListener('click', function () { zoom(g); });
    g.addEventListener('mouseover', function () {
      details.textContent = g.querySelector('title').textContent.replace('\\n', ': ');
    });
    g.addEventListener('mouseout', function () { details.textContent = ' '; });
  });
  reset.addEventListener('click', unzoom);
  document.getElementById('search').addEventListener('click', function () {
    var text = window.prompt('Search for (regular expression):', '');
    var total = 0, root = frames[0], whole = num(root, 'data-w'), spans = [];
    var re = null;
    if (text) { try { re = new RegExp(text); } catch (e) { re = null; } }
    frames.forEach(function (g) {
      var hit = re !== null && g !== root && re.test(g.getAttribute('data-name'));
      g.querySelector('rect').setAttribute('fill', hit ? 'rgb(230,0,230)' : g.getAttribute('data-fill'));
      if (hit) {
        var x = num(g, 'data-x'), w = num(g, 'data-w');
        if (!spans.some(function (s) { return x >= s[0] - 1e-6 && x + w <= s[1] + 1e-6; })) {
          spans.push([x, x + w]); total += w;
        }
      }
    });
    matched.textContent = re ? 'Matched: ' + (100 * total / whole).toFixed(1) + '%%' : ' ';
  });
})();
"""


def _render(profile: Profile, title: str, thread: int | None, width: int, min_width_px: float) -> str:
    root = call_tree(profile, thread=thread)
    whole = root.total_ns
    span = width - 2 * PADDING
    boxes = _layout(root, span, min_width_px) if whole else []
    depth = max((b.depth for b in boxes), default=0)
    height = _TOP + (depth + 1) * FRAME_HEIGHT + _BOTTOM
    subtitle = (
        f"{profile.meta.mode} time {_ns(whole)} in {root.samples:,} samples"
        if whole
        else "no samples" + (" in this thread" if thread is not None else "")
    )
    out: list[str] = [
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n',
        f'<svg version="1.1" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">\n',
        "<defs>"
        '<linearGradient id="background" x1="0" y1="0" x2="0" y2="1">'
        '<stop stop-color="#eeeeee" offset="5%"/><stop stop-color="#eeeeb0" offset="95%"/>'
        "</linearGradient></defs>\n",
        "<style>"
        f"text {{ font-family: {_FONT}; font-size: {_FONT_SIZE}px; fill: #000; }}"
        " #title { font-size: 17px; text-anchor: middle; }"
        " #subtitle { fill: #555; text-anchor: middle; }"
        " #unzoom, #search { cursor: pointer; fill: #333; }"
        " #unzoom { opacity: 0; } #matched { text-anchor: end; fill: #606; }"
        " g.frame { cursor: pointer; } g.frame:hover rect { stroke: #000; stroke-width: 0.5; }"
        " g.frame text { pointer-events: none; } g.parent { opacity: 0.55; }"
        "</style>\n",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="url(#background)"/>\n',
        f'<text id="title" x="{width / 2:.1f}" y="22">{_xml(title)}</text>\n',
        f'<text id="subtitle" x="{width / 2:.1f}" y="40">{_xml(subtitle)}</text>\n',
        f'<text id="unzoom" x="{PADDING}" y="22">Reset Zoom</text>\n',
        f'<text id="search" x="{width - PADDING - 50}" y="22">Search</text>\n',
        f'<text id="matched" x="{width - PADDING}" y="40"> </text>\n',
        f'<text id="details" x="{PADDING}" y="{height - 10}"> </text>\n',
        '<g id="frames">\n',
    ]
    for box in boxes:
        node = box.node
        name = "all" if box.depth == 0 else node.function
        fill = "rgb(214,210,200)" if box.depth == 0 else frame_colour(node.function)
        y = _TOP + (depth - box.depth) * FRAME_HEIGHT
        label = f"all ({_ns(whole)}, {root.samples:,} samples)" if box.depth == 0 else name
        out.append(
            f'<g class="frame" data-name="{_xml(name)}" data-label="{_xml(label)}" data-fill="{fill}" '
            f'data-x="{box.x:.4f}" data-w="{box.width:.4f}" data-depth="{box.depth}">'
            f"<title>{_xml(_tooltip(node, whole, box.depth == 0))}</title>"
            f'<rect x="{box.x:.2f}" y="{y}" width="{box.width:.2f}" height="{FRAME_HEIGHT - 1}" '
            f'rx="2" ry="2" fill="{fill}"/>'
            f'<text x="{box.x + 3:.2f}" y="{y + FRAME_HEIGHT - 4.5:.1f}">'
            f"{_xml(_fit(label, box.width))}</text>"
            "</g>\n"
        )
    out.append("</g>\n")
    script = _SCRIPT % {"pad": PADDING, "span": repr(float(span)), "cw": repr(_CHAR_WIDTH)}
    out.append(f'<script type="text/ecmascript"><![CDATA[{script}]]></script>\n')
    out.append("</svg>\n")
    return "".join(out)


def write_svg(
    profile: Profile,
    file: PathOrText,
    *,
    title: str | None = None,
    thread: int | None = None,
    width: int = 1200,
    min_width_px: float = 0.1,
) -> None:
    """Write a flamegraph of ``profile`` (or of one ``thread``) as SVG to a path (atomically) or a
    text file. ``width`` is the image width in px; frames narrower than ``min_width_px`` are left out.

    Raises InvalidArgument for an unknown thread, a width under 100 or a negative ``min_width_px``.
    """
    if isinstance(width, bool) or not isinstance(width, int) or width < 100:
        raise InvalidArgument(f"width must be an integer of at least 100 (px), got {width!r}")
    if not isinstance(min_width_px, (int, float)) or isinstance(min_width_px, bool) or not min_width_px >= 0:
        raise InvalidArgument(f"min_width_px must be a non-negative number, got {min_width_px!r}")
    if title is None:
        title = "Flame graph: " + default_title(profile)
        if thread is not None and thread in profile.threads:
            title += f", thread {profile.threads[thread].name} ({thread})"
    document = _render(profile, title, thread, width, float(min_width_px))
    with open_text_output(file) as handle:
        handle.write(document)
