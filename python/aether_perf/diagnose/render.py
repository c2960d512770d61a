"""Renderers of findings: text for people (rich: colour on a terminal, plain when piped), JSON for
programs, and GitHub Actions workflow commands (``::warning file=F,line=L,title=T::message``) that
show up as annotations on the pull request's lines. SARIF lives in ``aether_perf.export.sarif``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any, TextIO

from rich.text import Text

from aether_perf.model.finding import Finding
from aether_perf.report.text import make_console

__all__ = ["display_path", "render_github", "render_json", "render_text"]

_STYLES = {"error": "bold red", "warning": "yellow", "info": "cyan"}
#: GitHub has no "info" command level; "notice" is its closest.
_GITHUB_LEVEL = {"error": "error", "warning": "warning", "info": "notice"}


def display_path(file: str, root: str | None = None) -> str:
    """``file`` relative to ``root`` (the working directory by default) when it lies below it."""
    base = os.path.abspath(root or os.getcwd())
    path = os.path.abspath(file)
    if path == base or path.startswith(base + os.sep):
        return os.path.relpath(path, base)
    return file


def _where(finding: Finding, root: str | None) -> str:
    loc = finding.location
    if loc is None:
        return "(no location)"
    place = display_path(loc.file, root)
    return f"{place}:{loc.line}" if loc.line else place


def render_text(
    findings: Sequence[Finding],
    *,
    file: TextIO | None = None,
    color: bool | None = None,
    root: str | None = None,
    notes: Sequence[str] = (),
) -> None:
    """Each finding as ``path:line: severity: title`` then its message, evidence and suggestion;
    then a one-line count (and ``notes``, say which sources had no data)."""
    console = make_console(file, color)
    for finding in findings:
        head = Text()
        head.append(_where(finding, root), style="bold")
        head.append(": ")
        head.append(finding.severity, style=_STYLES[finding.severity])
        head.append(f": {finding.title} [{finding.rule}]")
        if finding.location is not None and finding.location.function:
            head.append(f" in {finding.location.function}", style="dim")
        console.print(head)
        console.print(Text(f"    {finding.message}"))
        for suggestion in finding.suggestions:
            console.print(Text(f"    try: {suggestion}", style="green"))
    counts = {level: sum(f.severity == level for f in findings) for level in ("error", "warning", "info")}
    if findings:
        summary = ", ".join(f"{n} {level}" for level, n in counts.items() if n)
        console.print(Text(f"aether diagnose: {len(findings)} finding(s): {summary}"))
    else:
        console.print(Text("aether diagnose: no findings"))
    for note in notes:
        console.print(Text(f"note: {note}", style="dim"))


def render_json(findings: Sequence[Finding], *, extra: dict[str, Any] | None = None) -> str:
    """``{"findings": [Finding.to_dict(), ...], **extra}`` as indented JSON."""
    document: dict[str, Any] = {"findings": [f.to_dict() for f in findings]}
    if extra:
        document.update(extra)
    return json.dumps(document, indent=2, default=_json_default) + "\n"


def _json_default(value: object) -> object:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(findings: Sequence[Finding], *, root: str | None = None) -> str:
    """One workflow command per finding (paths relative to ``root``, the working directory by
    default, as the checkout's paths are), escaped as the Actions toolkit escapes them."""
    lines = []
    for finding in findings:
        props = []
        loc = finding.location
        if loc is not None:
            props.append(f"file={_escape_property(display_path(loc.file, root))}")
            if loc.line:
                props.append(f"line={loc.line}")
        props.append(f"title={_escape_property(f'{finding.title} [{finding.rule}]')}")
        message = finding.message
        if finding.suggestions:
            message += "\nTry: " + finding.suggestions[0]
        level = _GITHUB_LEVEL[finding.severity]
        lines.append(f"::{level} {','.join(props)}::{_escape_data(message)}")
    return "".join(line + "\n" for line in lines)
