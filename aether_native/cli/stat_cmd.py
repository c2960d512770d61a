"""`aether stat`: run a script or module in-process and print its counter totals, like perf stat.

    aether stat [-e EVENTS] [--per-thread] [--interval 1s] [--analyze [--lang en|zh]]
                [--json FILE] [--] script.py [args ...]

The target runs as under `aether profile` (own argv, `__main__`, stdout and exit status; see
cli/target.py). Counting starts just before it and stops when it ends; the table goes to stderr.
Events that this machine cannot count are listed as <not supported> with the reason. By default
the counts follow the threads and child processes the program starts (inherit); with
--per-thread they are per thread and a forked child is not counted (the table says which).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from aether_native.cli import outputs
from aether_native.cli.errors import UsageError, from_exception
from aether_native.cli.memcheck_cmd import resolve_target
from aether_native.cli.parsing import ArgumentParser
from aether_native.cli.profile_cmd import SplitArgv, _flush, _sigint_ignored, split_argv
from aether_native.cli.target import Runner, validate

if TYPE_CHECKING:
    from aether_perf.analysis.bottlenecks import Lang
    from aether_perf.model.counters import CounterReading
    from aether_perf.model.finding import Finding

    from aether_native.counters import Counters

PROG = "aether stat"
USAGE = """\
aether stat [-e EVENTS] [--per-thread] [--interval DURATION] [--analyze [--lang en|zh]]
                   [--json FILE] [--] script.py [args ...]
       aether stat [options] -m module [args ...]"""

_VALUE_OPTIONS = ("-e", "--events", "--interval", "--lang", "--json")


def build_parser() -> ArgumentParser:
    from aether_native.counters import DEFAULT_EVENTS

    parser = ArgumentParser(
        prog=PROG,
        allow_abbrev=False,
        usage=USAGE,
        description="Run a Python script or module in this process and count hardware and "
        "software events (perf_event_open) while it runs, then print the totals to stderr like "
        "perf stat. The target keeps its own argv, stdout and exit status.",
    )
    what = parser.add_argument_group("what to run (one of)")
    what.add_argument("script", nargs="?", metavar="script.py [args ...]", help="a script and its arguments")
    what.add_argument(
        "-m", metavar="MODULE [args ...]", dest="module_help", help="run a module, as python -m"
    )
    how = parser.add_argument_group("counting")
    how.add_argument(
        "-e",
        "--events",
        action="append",
        metavar="EVENTS",
        help=f"comma-separated events, may be repeated (default: {','.join(DEFAULT_EVENTS)})",
    )
    how.add_argument("--per-thread", action="store_true", help="count each thread on its own (no inherit)")
    how.add_argument(
        "--no-inherit",
        action="store_true",
        help="count only the threads alive at the start, not threads and processes started later",
    )
    how.add_argument(
        "--user-only", action="store_true", help="count user mode only (as perf_event_paranoid=2 demands)"
    )
    how.add_argument(
        "--interval", metavar="DURATION", help="also print the counts of every interval (e.g. 1s, 500ms)"
    )
    report = parser.add_argument_group("report")
    report.add_argument(
        "--analyze", action="store_true", help="add the micro-architectural bottleneck report"
    )
    report.add_argument(
        "--lang", choices=("en", "zh"), help="language of the bottleneck report (with --analyze)"
    )
    report.add_argument(
        "--json", metavar="FILE", help="also write the reading (and findings, intervals) as JSON"
    )
    report.add_argument("-q", "--quiet", action="store_true", help="print nothing; only write --json")
    return parser


def _split(argv: list[str]) -> SplitArgv:
    return split_argv(argv, _VALUE_OPTIONS)


def _interval(value: str) -> float:
    from aether_perf.units import parse_duration

    try:
        return parse_duration(value, name="--interval", minimum=0.01, maximum=3600.0)
    except ValueError as exc:
        raise UsageError(f"argument --interval: {str(exc).removeprefix('--interval ')}") from None


def _make_counters(ns: argparse.Namespace) -> Counters:
    from aether_native.counters import DEFAULT_EVENTS, Counters

    events: list[str] = []
    for chunk in ns.events or []:
        events.extend(part for part in chunk.split(","))
    if ns.events is not None and not any(part.strip() for part in events):
        raise UsageError("argument -e/--events: expected event names, e.g. -e task-clock,page-faults")
    try:
        return Counters(
            events or DEFAULT_EVENTS,
            per_thread=ns.per_thread,
            inherit=not (ns.per_thread or ns.no_inherit),
            user_only=ns.user_only,
        )
    except Exception as exc:
        raise from_exception(exc) from None


class _IntervalPrinter:
    """Prints the delta of every interval from a daemon thread (perf stat -I); with --analyze,
    also the rules that fire on that interval (the chapter's "current minus previous")."""

    def __init__(
        self,
        counters: Counters,
        seconds: float,
        stream: TextIO | None,
        analyze: Lang | None = None,
    ) -> None:
        self.counters = counters
        self.seconds = seconds
        self.stream = stream
        self.analyze = analyze  # the report language, or None
        self.deltas: list[CounterReading] = []
        self.findings: list[list[Finding]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="aether-stat-interval", daemon=True)
        self._previous: CounterReading | None = None

    def start(self) -> None:
        self._previous = self.counters.read()
        self._thread.start()

    def _tick(self, current: CounterReading) -> None:
        assert self._previous is not None
        delta = current - self._previous
        self._previous = current
        self.deltas.append(delta)
        fired: list[Finding] = []
        if self.analyze is not None:
            from aether_perf.analysis.bottlenecks import bottlenecks

            fired = [f for f in bottlenecks(delta, lang=self.analyze) if f.evaluated and f.severity != "info"]
            self.findings.append(fired)
        if self.stream is not None:
            from aether_perf.report.counters_text import render_interval

            elapsed = current.duration_ns / 1e9
            render_interval(delta, elapsed, self.stream, header=len(self.deltas) == 1)
            for finding in fired:
                print(
                    f"{elapsed:14.6f} [{finding.severity}] {finding.title}: {finding.message}",
                    file=self.stream,
                )

    def _loop(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                self._tick(self.counters.read())
            except Exception:  # the counters stopped under us: the final reading says the rest
                return

    def stop(self, final: CounterReading) -> None:
        self._stop.set()
        self._thread.join()
        if self._previous is not None and final.duration_ns - self._previous.duration_ns > 0:
            self._tick(final)  # the last, partial interval


def run(argv: list[str], stderr: TextIO) -> int:
    split = _split(argv)
    ns = build_parser().parse_args(split.own)
    if ns.lang is not None and not ns.analyze:
        raise UsageError("--lang chooses the language of the --analyze report: give --analyze too")
    if ns.per_thread and ns.no_inherit:
        pass  # --per-thread never inherits; saying so twice is fine
    if ns.quiet and ns.json is None:
        raise UsageError("--quiet with no --json would print and write nothing")
    interval = _interval(ns.interval) if ns.interval is not None else None
    target = resolve_target(split)
    counters = _make_counters(ns)
    path: Path | None = None
    if ns.json is not None:
        if ns.json == outputs.STDOUT:
            raise UsageError("aether stat cannot write JSON to stdout (the target owns it); give a file")
        protect = (Path(target.name),) if target.kind == "script" else ()
        path = outputs.check_writable(Path(ns.json), protect=protect)
    validate(target)

    stream = None if ns.quiet else stderr
    pid = os.getpid()
    final: CounterReading | None = None
    printer: _IntervalPrinter | None = None
    with Runner(target) as runner:
        try:
            counters.start()
        except Exception as exc:
            raise from_exception(exc, "cannot start the counters") from None
        if interval is not None:
            printer = _IntervalPrinter(counters, interval, stream, (ns.lang or "en") if ns.analyze else None)
            printer.start()
        try:
            outcome = runner.run()
        finally:
            # A forked child that runs off the end of the script ends here, as under python, and
            # prints nothing: its counts reach the parent's counters through inherit (if on).
            if os.getpid() == pid:
                with _sigint_ignored():
                    final = counters.stop()
                    if printer is not None:
                        printer.stop(final)
    if final is None:
        return outcome.status

    with _sigint_ignored():
        _flush(sys.stdout)
        findings: list[Finding] = []
        if ns.analyze:
            from aether_perf.analysis.bottlenecks import bottlenecks

            findings = bottlenecks(final, lang=ns.lang or "en")
        if stream is not None:
            from aether_perf.report.counters_text import render_findings, render_stat

            names = {thread.native_id: thread.name for thread in threading.enumerate() if thread.native_id}
            notes = []
            if ns.per_thread:
                notes.append("forked child processes are not counted with --per-thread")
            elif ns.no_inherit:
                notes.append("threads and processes started by the program are not counted (--no-inherit)")
            render_stat(final, target.command, stream, thread_names=names, notes=notes)
            if findings:
                render_findings(findings, stream, lang=ns.lang or "en")
        if path is not None:
            _write_json(path, final, findings, printer, target.command, outcome.status)
        _flush(stderr)
    return outcome.status


def _write_json(
    path: Path,
    reading: CounterReading,
    findings: list[Finding],
    printer: _IntervalPrinter | None,
    command: list[str],
    status: int,
) -> None:
    from aether_perf.fileio import atomic_write_text

    data = {
        "format": "aether-stat",
        "version": 1,
        "command": command,
        "exit_status": status,
        "reading": reading.to_dict(),
        "intervals": [delta.to_dict() for delta in printer.deltas] if printer is not None else [],
        "interval_findings": (
            [[finding.to_dict() for finding in fired] for fired in printer.findings]
            if printer is not None
            else []
        ),
        "findings": [finding.to_dict() for finding in findings],
    }
    try:
        with atomic_write_text(path) as handle:
            json.dump(data, handle, indent=1, ensure_ascii=False)
            handle.write("\n")
    except OSError as exc:
        raise from_exception(exc, f"cannot write '{path}'") from None


__all__ = ["build_parser", "run"]
