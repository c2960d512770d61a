"""`aether perf-report`: open a saved profile and print a summary or convert it.

    aether perf-report --input run.aprof [--format text|speedscope|collapsed] [--top 20] [--tree] [-o FILE|-]

`text` prints the top-functions summary (and the call tree with --tree) to stdout, or to -o FILE.
`speedscope` / `collapsed` write next to the input (input stem + .speedscope.json / .collapsed.txt)
unless -o says where; `-o -` writes to stdout. The input is only read, never rewritten.
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
    from aether_perf.model import Profile

PROG = "aether perf-report"
REPORT_FORMATS = ("text", "speedscope", "collapsed")


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        allow_abbrev=False,
        description="Print a summary of a saved profile (.aprof), or convert it to speedscope or "
        "collapsed stacks.",
    )
    parser.add_argument("input_path", nargs="?", metavar="FILE", help="the profile (same as --input)")
    parser.add_argument("-i", "--input", metavar="FILE", help="the profile to read (.aprof)")
    parser.add_argument(
        "--format",
        choices=REPORT_FORMATS,
        default="text",
        help="text summary (default), speedscope or collapsed",
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
    destination = _destination(ns.output, ns.format, input_path)  # checked before reading anything
    profile = load_profile(input_path)

    if destination is None:
        _emit(profile, ns, sys.stdout, color=None)
        return 0
    from aether_perf.fileio import atomic_write_text

    try:
        with atomic_write_text(destination) as handle:
            _emit(profile, ns, handle, color=False)
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


def _check_input(path: Path) -> None:
    if not path.exists():
        raise UsageError(f"no such profile: '{path}'")
    if path.is_dir():
        raise UsageError(f"'{path}' is a directory, not a profile")


def _destination(output: str | None, fmt: str, input_path: Path) -> Path | None:
    """None for stdout; else the checked, absolute output path."""
    if output == outputs.STDOUT or (output is None and fmt == "text"):
        return None
    if output is None:
        output = str(input_path.with_name(input_path.stem + outputs.SUFFIXES[fmt]))
    return outputs.check_writable(Path(output), protect=(input_path,))


def _emit(profile: Profile, ns: argparse.Namespace, stream: TextIO, color: bool | None) -> None:
    if ns.format == "text":
        from aether_perf.report.text import render_call_tree, render_summary

        render_summary(profile, top=ns.top, file=stream, color=color)
        if ns.tree:
            render_call_tree(profile, file=stream, color=color)
    else:
        outputs.write_export(profile, ns.format, stream)
    stream.flush()


def _relative(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)
