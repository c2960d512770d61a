"""`aether profile`: run a script or module in-process under the Sampler and write the profile.

    aether profile [options] [--] script.py [args ...]
    aether profile [options] -m package.module [args ...]
    aether profile [options] --target script.py [-- args ...]
    aether profile [options] --demo

Everything after the script name or `-m MODULE` belongs to the target, as with `python`, so this
verb splits argv itself (see `split_argv`) and gives argparse only its own options.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # C module; no Python frames
import argparse
import contextlib
import os
import shlex
import sys
import threading
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple, TextIO

from aether_perf.units import format_duration

from aether_native.cli import outputs
from aether_native.cli.errors import UsageError, from_exception
from aether_native.cli.parsing import ArgumentParser, duration_arg, interval_arg, positive_int
from aether_native.cli.recording import Recording
from aether_native.cli.target import Outcome, Runner, Target, validate
from aether_native.cli.tracking import Trackers
from aether_native.cli.trim import drop_threads, trim_runner_frames

if TYPE_CHECKING:
    from aether_perf.model import Profile

    from aether_native import Sampler

PROG = "aether profile"
DEMO_MODULE = "aether_native.demo"
USAGE = """\
aether profile [options] [--] script.py [args ...]
       aether profile [options] -m module [args ...]
       aether profile [options] --target script.py [-- args ...]
       aether profile [options] --demo"""

#: Our options that take a value as the next argument (needed to find where the target starts).
_VALUE_OPTIONS = frozenset(
    {
        "--interval",
        "--mode",
        "--duration",
        "-o",
        "--output",
        "--format",
        "--top",
        "--target",
        "--push",
        "--app-name",
        "--label",
        "--push-format",
    }
)

_NOTHING = "nothing to run: give a script, -m MODULE, --target SCRIPT or --demo"


@dataclass
class SplitArgv:
    """`aether profile` argv cut in two: our options, and what names the target and its arguments."""

    own: list[str] = field(default_factory=list)
    script: str | None = None
    module: str | None = None
    rest: list[str] = field(default_factory=list)
    dashdash: bool = False  # `rest` came after `--` (a script, or the --target's arguments)


def split_argv(argv: list[str], value_options: Collection[str] = ()) -> SplitArgv:
    """Split at the first `--`, `-m MODULE` or bare word; our options are the part before it.

    Each option of ``value_options`` (default: this verb's) is joined to its value (`--interval
    -1ms` -> `--interval=-1ms`), so a value that looks like an option, `-m` or a word is never
    taken for one: every verb that runs a program splits its command line here."""
    value_options = value_options or _VALUE_OPTIONS
    split = SplitArgv()
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            rest = argv[i + 1 :]
            if rest[:1] == ["-m"]:  # `aether profile -- -m pkg.mod args`, as `python -m` reads
                return _module(split, rest[1:])
            split.dashdash, split.rest = True, rest
            return split
        if token == "-m":
            return _module(split, argv[i + 1 :])
        if token.startswith("-m") and not token.startswith("--"):
            return _module(split, [token[2:], *argv[i + 1 :]])
        if token in value_options:
            if i + 1 < len(argv):  # joined, so a value such as "-1ms" is not taken for an option
                split.own.append(f"{token}={argv[i + 1]}")
            else:
                split.own.append(token)
            i += 2
            continue
        if token.startswith("-") and token != "-":
            split.own.append(token)
            i += 1
            continue
        split.script, split.rest = token, argv[i + 1 :]
        return split
    return split


def _module(split: SplitArgv, rest: list[str]) -> SplitArgv:
    if not rest or not rest[0]:
        raise UsageError(f"argument -m: expected a module name (see '{PROG} --help')")
    split.module, split.rest = rest[0], rest[1:]
    return split


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        allow_abbrev=False,
        usage=USAGE,
        description="Run a Python script or module in this process under the sampling profiler, "
        "then write the profile and print a top-functions summary to stderr. The target keeps its "
        "own argv, stdout and exit status.",
    )
    what = parser.add_argument_group("what to run (one of)")
    what.add_argument("script", nargs="?", metavar="script.py [args ...]", help="a script and its arguments")
    what.add_argument(
        "-m", metavar="MODULE [args ...]", dest="module_help", help="run a module, as python -m"
    )
    what.add_argument("--target", metavar="SCRIPT", help="the script to run; its arguments go after --")
    what.add_argument("--demo", action="store_true", help="run the bundled demo workload")
    how = parser.add_argument_group("sampling")
    how.add_argument(
        "--interval",
        type=interval_arg,
        default="1ms",
        help="time between samples, e.g. 1ms, 250us (50us to 1s; default 1ms)",
    )
    how.add_argument(
        "--mode",
        choices=("cpu", "wall"),
        default="cpu",
        help="cpu: time on CPU (default); wall: elapsed time, idle threads too",
    )
    how.add_argument(
        "--duration",
        type=duration_arg,
        metavar="TIME",
        help="stop sampling after this long (e.g. 30s); the program runs on to its end",
    )
    out = parser.add_argument_group("output")
    out.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="where to write the profile (default aether-<name>-<pid>.<suffix> here; "
        "demo.speedscope.json for --demo)",
    )
    out.add_argument(
        "--format",
        choices=outputs.PROFILE_FORMATS,
        help="aprof (reopen with perf-report), speedscope, collapsed, pprof or html; when not "
        "given, inferred from -o's suffix (.aprof, .json, .txt, .pb.gz, .html), else aprof "
        "(speedscope for --demo)",
    )
    push = parser.add_argument_group("continuous profiling")
    push.add_argument(
        "--push",
        metavar="URL",
        help="also upload the profile to a Grafana Pyroscope server (e.g. http://127.0.0.1:4040)",
    )
    push.add_argument(
        "--app-name", metavar="NAME", help="application name for --push (default: the target's name)"
    )
    push.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a label for --push (repeatable), e.g. --label env=staging",
    )
    push.add_argument(
        "--push-format", choices=("pprof", "folded"), default="pprof", help="upload format (default pprof)"
    )
    conc = parser.add_argument_group("concurrency and I/O (stored in the profile)")
    conc.add_argument(
        "--locks", action="store_true", help="instrument threading and asyncio locks: waits and holds"
    )
    conc.add_argument("--io", action="store_true", help="time file and socket calls by file, peer and stack")
    conc.add_argument("--sched", action="store_true", help="per-thread CPU, context switches and migrations")
    out.add_argument(
        "--top", type=positive_int, default=20, metavar="N", help="functions in the summary (default 20)"
    )
    out.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print neither the summary nor where the profile was written",
    )
    return parser


def resolve_target(split: SplitArgv, ns: argparse.Namespace) -> Target:
    """Decide what to run from the split argv and the parsed options; UsageError if unclear."""
    given = [
        name
        for name, present in (
            ("a script", split.script is not None or (split.dashdash and ns.target is None and split.rest)),
            ("-m MODULE", split.module is not None),
            ("--target", ns.target is not None),
            ("--demo", bool(ns.demo)),
        )
        if present
    ]
    if len(given) > 1:
        if given[:1] == ["a script"] and ns.target is not None:
            raise UsageError(f"got both --target and a script; put the arguments for {ns.target} after '--'")
        raise UsageError(f"give only one of {' and '.join(given)}")
    if not given:
        raise UsageError(_NOTHING)
    if ns.demo:
        if split.rest:
            raise UsageError("--demo takes no arguments")
        return Target("module", DEMO_MODULE)
    if split.module is not None:
        return Target("module", split.module, tuple(split.rest))
    if ns.target is not None:
        return Target("script", ns.target, tuple(split.rest))
    if split.script is not None:
        return Target("script", split.script, tuple(split.rest))
    return Target("script", split.rest[0], tuple(split.rest[1:]))


def run(argv: list[str], stderr: TextIO) -> int:
    split = split_argv(argv)
    ns = build_parser().parse_args(split.own)
    target = resolve_target(split, ns)
    demo = bool(ns.demo)
    fmt = outputs.infer_format(ns.output, ns.format, "speedscope" if demo else "aprof")
    if ns.output == outputs.STDOUT:
        raise UsageError(
            "aether profile cannot write the profile to stdout (the target owns it); give a file"
        )
    shown = ns.output or (f"demo{outputs.SUFFIXES[fmt]}" if demo else outputs.default_name(target.stem, fmt))
    protect = (Path(target.name),) if target.kind == "script" else ()
    path = outputs.check_writable(Path(shown), protect=protect)
    validate(target)
    push = _push_settings(ns, target)  # a bad label fails now, not after the run
    sampler = _make_sampler(ns.interval, ns.mode)

    pid = os.getpid()
    trackers = Trackers(locks=ns.locks, io=ns.io, sched=ns.sched)
    with Runner(target) as runner:
        recording = Recording(sampler, ns.duration)
        recording.start()
        try:
            with trackers:
                outcome = runner.run()
        finally:
            # A child the program forked and let run off the end of the script ends here, as it
            # would under python: with its status, and without writing a profile of its own.
            with _sigint_ignored():
                profile = recording.finish() if os.getpid() == pid else None
    if profile is None:
        return outcome.status
    profile = drop_threads(trim_runner_frames(profile), recording.own_threads | trackers.own_threads)
    trackers.attach(profile)

    with _sigint_ignored():
        _flush(sys.stdout)
        _annotate(profile, target, outcome, recording.expired)
        outputs.write_profile(profile, path, fmt)
        if not ns.quiet:
            _summarise(profile, ns.top, stderr)
            if trackers.wanted:
                _print_findings(profile, stderr)
            note = f"; sampling stopped after {format_duration(ns.duration)}" if recording.expired else ""
            print(f"aether: wrote {fmt} profile to {shown} ({len(profile):,} samples{note})", file=stderr)
            _flush(stderr)
        if push is not None:
            # After the file is written: a refused upload loses nothing.
            _push(profile, push, stderr, quiet=ns.quiet)
    return outcome.status


class _PushSettings(NamedTuple):
    url: str
    app_name: str
    labels: dict[str, str]
    format: Literal["pprof", "folded"]


def _push_settings(ns: argparse.Namespace, target: Target) -> _PushSettings | None:
    if ns.push is None:
        if ns.app_name is not None or ns.label:
            raise UsageError("--app-name and --label go with --push URL")
        return None
    from aether_perf.push.pyroscope import check_url, ingest_name

    labels = {}
    for item in ns.label:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--label must look like KEY=VALUE, got {item!r}")
        labels[key] = value
    app_name = ns.app_name or target.stem
    try:
        check_url(ns.push)  # a bad URL or label fails now, not after the program ran
        ingest_name(app_name, labels)
    except Exception as exc:
        raise from_exception(exc) from None
    return _PushSettings(ns.push, app_name, labels, "folded" if ns.push_format == "folded" else "pprof")


def _push(profile: Profile, settings: _PushSettings, stderr: TextIO, *, quiet: bool) -> None:
    from aether_perf.push.pyroscope import push

    try:
        result = push(
            profile,
            settings.url,
            app_name=settings.app_name,
            labels=settings.labels,
            format=settings.format,
            auth_token=os.environ.get("AETHER_PUSH_TOKEN") or None,
        )
    except Exception as exc:
        raise from_exception(exc) from None
    if not quiet:
        print(
            f"aether: pushed to {settings.url} ({result.bytes_sent:,} bytes, {result.attempts} attempt(s))",
            file=stderr,
        )


def _make_sampler(interval: float, mode: str) -> Sampler:
    from aether_native import Sampler

    try:
        return Sampler(interval=interval, mode=mode)
    except Exception as exc:
        raise from_exception(exc) from None


def _annotate(profile: Profile, target: Target, outcome: Outcome, expired: bool) -> None:
    """Record what ran and how it ended in the profile's metadata."""
    meta = profile.meta
    meta.program = shlex.join(target.command)
    meta.extra["command"] = target.command
    meta.extra["exit_status"] = outcome.status
    if outcome.exception is not None:
        meta.extra["exception"] = outcome.exception
    if expired:
        meta.extra["sampling_stopped_by_duration"] = True


def _summarise(profile: Profile, top: int, stderr: TextIO) -> None:
    from aether_perf.report.text import render_summary

    render_summary(profile, top=top, file=stderr, color=None)


def _print_findings(profile: Profile, stderr: TextIO) -> None:
    from aether_perf.analysis.concurrency import findings
    from aether_perf.report.findings_text import render_findings

    render_findings(findings(profile), file=stderr, color=None)


def _flush(stream: TextIO | None) -> None:
    with contextlib.suppress(Exception):
        if stream is not None:
            stream.flush()


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Once the program has ended, a second Ctrl-C must not cut stopping or writing short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    # _signal, not signal: the latter's Python wrappers would show up in the profile's last samples.
    previous = _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
    try:
        yield
    finally:
        _signal.signal(_signal.SIGINT, previous)
