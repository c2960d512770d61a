"""`aether annotate`: a saved profile's time (and a heap snapshot's bytes) beside the source lines.

    aether annotate run.aprof [FILE ...] [--heap run.heap.aprof] [--html DIR] [--hot PCT]

Prints each FILE (default: every file of the program with recorded time or allocations) with the
line's time, share of the run, CPU share and bytes allocated in the margin; hot lines are
highlighted on a terminal and marked with `>` when piped. A source file that is gone is still
annotated from what was recorded, and the output says which file was missing. --html DIR writes
the same as one self-contained page per file plus index.html.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TextIO

from aether_native.cli.errors import RunError, UsageError, from_exception
from aether_native.cli.parsing import ArgumentParser
from aether_native.cli.recorded import split_recordings

PROG = "aether annotate"


def _percent(value: str) -> float:
    import argparse

    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percentage, got {value!r}") from None
    if not 0.0 <= number <= 100.0:
        raise argparse.ArgumentTypeError(f"must be within 0..100, got {value!r}")
    return number


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        allow_abbrev=False,
        description="Print source files with each line's time, share of the run, CPU share and "
        "bytes allocated in the margin, from a saved profile and/or heap snapshot.",
    )
    parser.add_argument("recording", metavar="run.aprof", help="a profile or heap snapshot (.aprof)")
    parser.add_argument(
        "files", nargs="*", metavar="FILE", help="source files to annotate (default: the program's files)"
    )
    parser.add_argument(
        "--heap", metavar="SNAPSHOT", action="append", default=[], help="also show a heap snapshot's bytes"
    )
    parser.add_argument(
        "--hot",
        type=_percent,
        default=5.0,
        metavar="PCT",
        help="highlight lines above PCT%% of the run (default 5)",
    )
    parser.add_argument("--html", metavar="DIR", help="also write one HTML page per file into DIR")
    return parser


def run(argv: list[str], stderr: TextIO) -> int:
    import sys

    ns = build_parser().parse_args(argv)
    profiles, heaps = split_recordings([Path(ns.recording), *map(Path, ns.heap)])
    if len(profiles) > 1:
        raise UsageError("give at most one profile (the others must be heap snapshots)")
    if len(heaps) > 1:
        raise UsageError("give at most one heap snapshot")
    if ns.html is not None and Path(ns.html).exists() and not Path(ns.html).is_dir():
        raise UsageError(f"--html: '{ns.html}' exists and is not a directory")
    from aether_perf.report.annotate_data import annotate
    from aether_perf.report.annotate_text import render_annotations

    try:
        files = annotate(
            profiles[0] if profiles else None, heaps[0] if heaps else None, ns.files, hot_share=ns.hot
        )
    except Exception as exc:
        raise from_exception(exc) from None
    unknown = [ann.file for ann in files if ann.missing and not ann.rows]
    if unknown:
        raise UsageError(f"'{unknown[0]}' is neither in the recording nor a readable file")
    if not files:
        print("aether: nothing recorded in the program's own files", file=stderr)
        return 0
    render_annotations(files, file=sys.stdout, color=None)
    for ann in files:
        if ann.missing:
            print(f"aether: {ann.missing}: {ann.file} (annotated from the recording only)", file=stderr)
    if ns.html is not None:
        from aether_perf.report.annotate_html import write_pages

        try:
            written = write_pages(files, ns.html)
        except OSError as exc:
            raise RunError(f"cannot write '{ns.html}': {exc.strerror or exc}") from None
        print(
            f"aether: wrote {len(written) - 1} annotated page(s) to {os.path.join(ns.html, 'index.html')}",
            file=stderr,
        )
    return 0


__all__ = ["build_parser", "run"]
