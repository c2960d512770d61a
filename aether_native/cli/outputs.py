"""Output files of the `aether` command: formats, default names, checks made before any work."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from aether_native.cli.errors import RunError, UsageError

if TYPE_CHECKING:
    from aether_perf.model import Profile, Span

#: Formats `aether profile` writes; `aether perf-report` adds text, svg and chrome-trace.
PROFILE_FORMATS = ("aprof", "speedscope", "collapsed", "pprof", "html")
REPORT_FORMATS = ("text", "html", "svg", "speedscope", "collapsed", "pprof", "chrome-trace")
#: Formats whose bytes are not text: never to a terminal's text stream.
BINARY_FORMATS = ("aprof", "pprof")

#: The suffix a default output name gets, per format.
SUFFIXES = {
    "aprof": ".aprof",
    "speedscope": ".speedscope.json",
    "collapsed": ".collapsed.txt",
    "pprof": ".pb.gz",
    "html": ".html",
    "svg": ".svg",
    "chrome-trace": ".trace.json",
    "text": ".txt",
}

#: Formats inferred from an output name's last suffix when --format is not given.
_INFERRED = {
    ".aprof": "aprof",
    ".json": "speedscope",
    ".txt": "collapsed",
    ".collapsed": "collapsed",
    ".gz": "pprof",
    ".pb": "pprof",
    ".html": "html",
    ".htm": "html",
    ".svg": "svg",
}

STDOUT = "-"


def infer_format(output: str | None, explicit: str | None, default: str) -> str:
    """--format if given, else the format named by the output's suffix, else `default`."""
    if explicit is not None:
        return explicit
    if output is None or output == STDOUT:
        return default
    return _INFERRED.get(Path(output).suffix.lower(), default)


def default_name(stem: str, fmt: str) -> str:
    """`aether-<stem>-<pid><suffix>`, in the current directory."""
    return f"aether-{stem}-{os.getpid()}{SUFFIXES[fmt]}"


def check_writable(path: Path, *, protect: tuple[Path, ...] = ()) -> Path:
    """Check, before any work is done, that `path` can be written; return it absolute.

    Raises UsageError when its directory is missing or not writable, when it names a directory, or
    when it is one of the `protect`ed files (the input profile, the target script). Overwriting an
    earlier output is fine: every write goes to a temporary file renamed over the old one.
    """
    path = Path(os.path.abspath(path))
    parent = path.parent
    if not parent.is_dir():
        raise UsageError(f"cannot write '{path}': directory '{parent}' does not exist")
    if path.is_dir():
        raise UsageError(f"cannot write '{path}': it is a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write '{path}': directory '{parent}' is not writable")
    for other in protect:
        if path.exists() and other.exists() and os.path.samefile(path, other):
            raise UsageError(f"refusing to overwrite '{other}' with the output")
    return path


def write_profile(
    profile: Profile, path: Path, fmt: str, *, base: Profile | None = None, spans: list[Span] | None = None
) -> None:
    """Write `profile` to `path` in `fmt`; atomic, as aether_perf writes every file (temporary
    file + rename). `base` (html only) makes it a differential flamegraph against that profile."""
    try:
        _write(profile, fmt, path, base, spans)
    except OSError as exc:
        raise RunError(f"cannot write '{path}': {exc.strerror or exc}") from None


def write_stream(
    profile: Profile,
    fmt: str,
    stream: TextIO,
    *,
    base: Profile | None = None,
    spans: list[Span] | None = None,
) -> None:
    """Write `profile` in `fmt` to an open text stream (binary formats go to its buffer)."""
    _write(profile, fmt, stream.buffer if fmt in BINARY_FORMATS else stream, base, spans)


def _write(profile: Profile, fmt: str, file: Any, base: Profile | None, spans: list[Span] | None) -> None:
    if fmt == "aprof":
        profile.save(file)
    elif fmt == "speedscope":
        profile.to_speedscope(file)
    elif fmt == "collapsed":
        profile.to_collapsed(file)
    elif fmt == "pprof":
        profile.to_pprof(file)
    elif fmt == "html":
        from aether_perf.report.html import write_html

        write_html(profile, file, base=base, spans=spans)
    elif fmt == "svg":
        from aether_perf.report.svg import write_svg

        write_svg(profile, file)
    elif fmt == "chrome-trace":
        from aether_perf.export import chrome_trace

        chrome_trace.write(file, profile=profile, spans=spans)
    else:
        raise ValueError(f"unknown format {fmt!r}")
