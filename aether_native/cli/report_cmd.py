"""`aether perf-report`: open a saved profile and print a summary or convert it.

    aether perf-report --input run.aprof [--format text|html|svg|speedscope|collapsed|pprof|chrome-trace]
                       [--diff BASE.aprof] [--top 20] [--tree] [-o FILE|-]

`text` prints the top-functions summary (and the call tree with --tree) to stdout, or to -o FILE;
with --diff it prints the biggest changes against BASE instead. Every other format writes next to
the input (input stem + the format's suffix) unless -o says where; `-o -` writes to stdout. html
with --diff is a differential flamegraph. The inputs are only read, never rewritten.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from aether_native.cli import outputs
from aether_native.cli.errors import RunError, UsageError
from aether_native.cli.parsing import ArgumentParser, positive_int

if TYPE_CHECKING:
    from aether_perf.model import Profile, Span

PROG = "aether perf-report"
REPORT_FORMATS = outputs.REPORT_FORMATS
DIFF_FORMATS = ("text", "html")


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        allow_abbrev=False,
        description="Print a summary of a saved profile (.aprof), compare it with another, or convert "
        "it to an HTML or SVG flamegraph, speedscope, collapsed stacks, pprof or a Chrome trace.",
    )
    parser.add_argument("input_path", nargs="?", metavar="FILE", help="the profile (same as --input)")
    parser.add_argument("-i", "--input", metavar="FILE", help="the profile to read (.aprof)")
    parser.add_argument(
        "--format",
        choices=REPORT_FORMATS,
        default="text",
        help="text summary (default), html, svg, speedscope, collapsed, pprof or chrome-trace",
    )
    parser.add_argument(
        "--spans",
        metavar="TRACE",
        help="html, chrome-trace: draw the spans of an instrumentation trace (a Chrome trace "
        "written by aether_perf.instrumentation) on the profile's timeline",
    )
    parser.add_argument(
        "--diff",
        metavar="BASE",
        help="compare with the BASE profile: a table of the biggest changes (text) or a "
        "differential flamegraph (html; red grew, blue shrank)",
    )
    parser.add_argument(
        "--top", type=positive_int, default=20, metavar="N", help="functions in the text summary (default 20)"
    )
    parser.add_argument("--tree", action="store_true", help="text: also print the call tree")
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="where to write ('-' for stdout); default: stdout for text, "
        "<input stem>.speedscope.json / .collapsed.txt beside the input",
    )
    return parser


def run(argv: list[str], stderr: TextIO) -> int:
    ns = build_parser().parse_args(argv)
    if ns.input is not None and ns.input_path is not None:
        raise UsageError("give the profile once: either FILE or --input FILE")
    source = ns.input if ns.input is not None else ns.input_path
    if source is None:
        raise UsageError(f"no profile given: use --input FILE (see '{PROG} --help')")
    input_path = Path(source)
    _check_input(input_path)
    if ns.diff is not None:
        if ns.format not in DIFF_FORMATS:
            raise UsageError(f"--diff works with --format text or html, not {ns.format}")
        _check_input(Path(ns.diff))
    # Checked before reading anything.
    destination = _destination(
        ns.output,
        ns.format,
        input_path,
        Path(ns.diff) if ns.diff else None,
        Path(ns.spans) if ns.spans else None,
    )
    if ns.spans is not None:
        if ns.format not in ("html", "chrome-trace"):
            raise UsageError(f"--spans works with --format html or chrome-trace, not {ns.format}")
        _check_input(Path(ns.spans), what="trace")
    if _is_heap(input_path):
        return _heap_report(input_path, destination, ns, stderr)
    if _is_metrics(input_path):
        return _metrics_report(input_path, destination, ns, stderr)
    profile = load_profile(input_path)
    base = load_profile(Path(ns.diff)) if ns.diff is not None else None
    spans = _load_spans(Path(ns.spans)) if ns.spans is not None else None

    if destination is None:
        _emit(profile, base, ns, sys.stdout, color=None, spans=spans)
        return 0
    if ns.format == "text":
        from aether_perf.fileio import atomic_write_text

        try:
            with atomic_write_text(destination) as handle:
                _emit(profile, base, ns, handle, color=False)
        except OSError as exc:
            raise RunError(f"cannot write '{destination}': {exc.strerror or exc}") from None
    else:
        outputs.write_profile(profile, destination, ns.format, base=base, spans=spans)
    print(f"aether: wrote {ns.format} to {ns.output or _relative(destination)}", file=stderr)
    return 0


HEAP_FORMATS = ("text", "html", "speedscope", "collapsed")


def _is_heap(path: Path) -> bool:
    """True when `path` holds a heap snapshot (an aprof document of kind "heap")."""
    from aether_perf.model.fileformat import read_document

    try:
        return read_document(path).kind == "heap"
    except Exception:  # unreadable or not ours: load_profile says what is wrong with it
        return False


def _heap_report(path: Path, destination: Path | None, ns: argparse.Namespace, stderr: TextIO) -> int:
    """perf-report on a heap snapshot: the heap summary and leak totals (text), or a conversion."""
    if ns.format not in HEAP_FORMATS:
        raise UsageError(f"--format {ns.format} is not available for heap snapshots yet")
    if ns.diff is not None or ns.spans is not None or ns.tree:
        raise UsageError("--diff, --spans and --tree are not available for heap snapshots yet")
    from aether_perf.errors import AetherError
    from aether_perf.model import load_heap

    try:
        snapshot = load_heap(path)
    except OSError as exc:
        raise UsageError(f"cannot read heap snapshot '{path}': {exc.strerror or exc}") from None
    except AetherError as exc:
        raise UsageError(str(exc)) from None

    def emit(stream: TextIO, color: bool | None) -> None:
        if ns.format == "text":
            from aether_perf.analysis.heap import leak_report
            from aether_perf.report.heap_text import render_heap_summary, render_leak_report

            render_heap_summary(snapshot, top=ns.top, file=stream, color=color)
            render_leak_report(leak_report(snapshot), full=False, file=stream, color=color)
        elif ns.format == "html":
            snapshot.to_flamegraph_html(stream)
        elif ns.format == "speedscope":
            snapshot.to_speedscope(stream)
        else:
            snapshot.to_collapsed(stream)
        stream.flush()

    if destination is None:
        emit(sys.stdout, None)
        return 0
    from aether_perf.fileio import atomic_write_text

    try:
        with atomic_write_text(destination) as handle:
            emit(handle, False)
    except OSError as exc:
        raise RunError(f"cannot write '{destination}': {exc.strerror or exc}") from None
    print(f"aether: wrote {ns.format} to {ns.output or _relative(destination)}", file=stderr)
    return 0


METRICS_FORMATS = ("text", "html")


def _is_metrics(path: Path) -> bool:
    """True when `path` is a monitor recording (`aether monitor --record`, JSON lines)."""
    from aether_perf.monitor.record import is_recording

    return is_recording(path)


def _metrics_report(path: Path, destination: Path | None, ns: argparse.Namespace, stderr: TextIO) -> int:
    """perf-report on a monitor recording: min/mean/max per series (text) or charts (html)."""
    if ns.format not in METRICS_FORMATS:
        raise UsageError(f"--format {ns.format} is not available for metrics recordings (text or html)")
    if ns.diff is not None or ns.spans is not None or ns.tree:
        raise UsageError("--diff, --spans and --tree are not available for metrics recordings")
    from aether_perf.errors import AetherError
    from aether_perf.monitor.record import read_recording
    from aether_perf.report.metrics_html import write_metrics_html

    try:
        recording = read_recording(path)
    except OSError as exc:
        raise UsageError(f"cannot read recording '{path}': {exc.strerror or exc}") from None
    except AetherError as exc:
        raise UsageError(str(exc)) from None

    def emit(stream: TextIO) -> None:
        if ns.format == "html":
            write_metrics_html(recording, stream)
            return
        from aether_perf.monitor.display import format_value, stats

        print(f"{recording.scope}: {len(recording.times)} samples", file=stream)
        for name, column in recording.series.items():
            values = [v for v in column if v is not None]
            if values:
                last, mean, peak = stats(values)
                shown = ", ".join(
                    f"{k} {format_value(name, v)}"
                    for k, v in (("min", min(values)), ("mean", mean), ("max", peak), ("last", last))
                )
                print(f"  {name:<16} {shown}", file=stream)
        for alert in recording.alerts:
            print(f"  alert: {alert.get('message')}", file=stream)

    if destination is None:
        emit(sys.stdout)
        return 0
    from aether_perf.fileio import atomic_write_text

    try:
        with atomic_write_text(destination) as handle:
            emit(handle)
    except OSError as exc:
        raise RunError(f"cannot write '{destination}': {exc.strerror or exc}") from None
    print(f"aether: wrote {ns.format} to {ns.output or _relative(destination)}", file=stderr)
    return 0


def load_profile(path: Path) -> Profile:
    """Load a saved profile; a missing, unreadable or malformed file is a one-line UsageError."""
    _check_input(path)
    from aether_native import load

    try:
        return load(path)
    except OSError as exc:
        raise UsageError(f"cannot read profile '{path}': {exc.strerror or exc}") from None
    except Exception as exc:  # ProfileFormatError, or whatever a malformed file provoked
        from aether_perf.errors import AetherError

        if isinstance(exc, AetherError):  # its message names the file and what is wrong with it
            raise UsageError(str(exc)) from None
        raise UsageError(f"cannot read profile '{path}': {type(exc).__name__}: {exc}") from None


def _check_input(path: Path, what: str = "profile") -> None:
    if not path.exists():
        raise UsageError(f"no such {what}: '{path}'")
    if path.is_dir():
        raise UsageError(f"'{path}' is a directory, not a {what}")


def _destination(
    output: str | None, fmt: str, input_path: Path, base: Path | None, spans: Path | None
) -> Path | None:
    """None for stdout; else the checked, absolute output path (never one of the inputs)."""
    if output == outputs.STDOUT or (output is None and fmt == "text"):
        return None
    if output is None:
        stem = input_path.stem + (f"-vs-{base.stem}" if base is not None else "")
        output = str(input_path.with_name(stem + outputs.SUFFIXES[fmt]))
    protect = tuple(p for p in (input_path, base, spans) if p is not None)
    return outputs.check_writable(Path(output), protect=protect)


def _load_spans(path: Path) -> list[Span]:
    from aether_perf.export import chrome_trace

    try:
        return chrome_trace.read_spans(path)
    except OSError as exc:
        raise UsageError(f"cannot read spans '{path}': {exc.strerror or exc}") from None
    except Exception as exc:  # not JSON, not a Chrome trace
        raise UsageError(f"cannot read spans '{path}': {type(exc).__name__}: {exc}") from None


def _emit(
    profile: Profile,
    base: Profile | None,
    ns: argparse.Namespace,
    stream: TextIO,
    color: bool | None,
    spans: list[Span] | None = None,
) -> None:
    if ns.format == "text" and base is not None:
        from aether_perf.analysis.diff import diff_profiles
        from aether_perf.report.diff_text import render_diff

        render_diff(diff_profiles(base, profile), top=ns.top, file=stream, color=color)
    elif ns.format == "text":
        from aether_perf.report.text import render_call_tree, render_summary

        render_summary(profile, top=ns.top, file=stream, color=color)
        if ns.tree:
            render_call_tree(profile, file=stream, color=color)
        _render_findings(profile, stream, color)
    else:
        outputs.write_stream(profile, ns.format, stream, base=base, spans=spans)
    stream.flush()


def _render_findings(profile: Profile, stream: TextIO, color: bool | None) -> None:
    """The lock, scheduling, I/O and GIL findings, for profiles that can have them."""
    from aether_perf.analysis.concurrency import EXTRA_KEY, findings
    from aether_perf.errors import AetherError
    from aether_perf.report.concurrency_tables import concurrency_tables
    from aether_perf.report.findings_text import render_findings, render_tables

    if EXTRA_KEY not in profile.meta.extra and profile.meta.mode != "wall":
        return
    try:
        found = findings(profile)
        tables = concurrency_tables(profile)
    except AetherError as exc:
        raise RunError(str(exc)) from None
    render_tables(tables, file=stream, color=color)
    render_findings(found, file=stream, color=color)


def _relative(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)
