"""`aether load`: run a load-test scenario file against an HTTP server and report.

    aether load scenario.py [--users N | --rate R/s] [--ramp-up 30s] [--duration 2m] [--host URL]
                            [--threshold "p95<200ms" ...] [--workers N] [--engine native|locust]
                            [--json out.json] [--html report.html] [--scenario NAME]

The file defines a :class:`aether_perf.load.Scenario`; the options override its fields (``--users``
switches it to the closed model, ``--rate`` to the open one). Live progress goes to stderr (a
refreshing line on a terminal, a plain line every 5 s when piped); the summary to stdout.

With ``--profile-target "server.py ARGS"`` the system under test runs on this machine under
``aether profile --mode wall`` (load_target.py) and its profile is saved beside the report.

Exit statuses: 0 done and every threshold held; 1 a threshold failed (each failing one named on
stderr), or no transaction succeeded at all (an unreachable target, say: its errors are reported
by kind first); 2 bad input (scenario file, option, threshold syntax, output path); 130 Ctrl-C
(the summary, JSON and HTML of what ran until then are still written, marked interrupted).
"""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from aether_native.cli import outputs
from aether_native.cli.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    RunError,
    UsageError,
    from_exception,
)
from aether_native.cli.parsing import ArgumentParser, duration_arg, positive_int

if TYPE_CHECKING:
    from aether_perf.load.runner import Progress

PROG = "aether load"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        allow_abbrev=False,
        description="Run the load-test Scenario defined in a Python file against an HTTP server: "
        "virtual users (closed model, --users) or a fixed arrival rate (open model, --rate; latency "
        "corrected for coordinated omission), ramped up in stages, then sustained. Prints per-stage and "
        "per-transaction latency percentiles, throughput and errors by kind; checks thresholds.",
    )
    parser.add_argument("scenario_file", metavar="scenario.py", help="a Python file defining a Scenario")
    parser.add_argument("--scenario", metavar="NAME", help="which Scenario, when the file defines several")
    load = parser.add_argument_group("load (override the scenario's own)")
    model = load.add_mutually_exclusive_group()
    model.add_argument("--users", type=positive_int, metavar="N", help="closed model: N virtual users")
    model.add_argument("--rate", metavar="R/s", help="open model: transactions started per second ('500/s')")
    load.add_argument("--ramp-up", type=_ramp, metavar="DURATION", help="ramp-up time ('30s'; 0 for none)")
    load.add_argument("--duration", type=duration_arg, metavar="DURATION", help="sustained time ('2m')")
    load.add_argument("--host", metavar="URL", help="base URL of the system under test")
    load.add_argument("--workers", type=positive_int, default=1, metavar="N", help="processes (default 1)")
    load.add_argument(
        "--engine",
        choices=("native", "locust"),
        default="native",
        help="native asyncio users (default) or locust (its FastHttpUser, headless)",
    )
    out = parser.add_argument_group("results")
    out.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="EXPR",
        help="pass/fail criterion, repeatable: 'p95<200ms', 'errors<1%%', 'rps>100', 'p99[buy]<1s'",
    )
    out.add_argument("--json", metavar="FILE", help="write the full result as JSON")
    out.add_argument("--html", metavar="FILE", help="write a self-contained HTML report with charts")
    out.add_argument(
        "--profile-target",
        metavar='"server.py ARGS"',
        help="run the system under test (a Python script or '-m module', with its arguments) on this "
        "machine under 'aether profile --mode wall' while loading it; the profile is saved beside the "
        "report (REPORT.aprof, and its log REPORT.log)",
    )
    return parser


def _ramp(value: str) -> float:
    if value.strip() in ("0", "0s"):
        return 0.0
    return duration_arg(value)


def run(argv: list[str], stderr: TextIO) -> int:
    from aether_perf.errors import InvalidArgument
    from aether_perf.load.loader import load_scenario
    from aether_perf.load.thresholds import check_thresholds, parse_threshold

    args = build_parser().parse_args(argv)
    source = Path(args.scenario_file)
    protect = (source,) if source.exists() else ()
    json_path = outputs.check_writable(Path(args.json), protect=protect) if args.json else None
    html_path = outputs.check_writable(Path(args.html), protect=protect) if args.html else None
    if json_path is not None and html_path is not None and json_path == html_path:
        raise UsageError("--json and --html name the same file")
    try:
        thresholds = [parse_threshold(t) for t in args.threshold]
        scenario = load_scenario(source, args.scenario)
        overrides: dict[str, object] = {
            "users": args.users,
            "arrival_rate": args.rate,
            "ramp_up": args.ramp_up,
            "duration": args.duration,
            "host": args.host,
        }
        scenario = scenario.with_overrides(**{k: v for k, v in overrides.items() if v is not None})
        names = {t.name for t in scenario.transaction_list}
        for t in thresholds:
            if t.transaction is not None and t.transaction not in names:
                raise InvalidArgument(
                    f"threshold {t.text!r} names transaction {t.transaction!r}; the scenario has "
                    f"{', '.join(sorted(names))}"
                )
        if not scenario.host:
            raise InvalidArgument(f"scenario {scenario.name!r} has no host: give --host http://HOST:PORT")
        from aether_perf.load.client import parse_host

        parse_host(scenario.host)
        if args.workers > 1 and args.engine == "locust":
            raise InvalidArgument(
                "--workers is for the native engine; locust spreads load with its own --processes"
            )
        if args.workers > 1:
            from aether_perf.load.workers import split

            split(scenario, args.workers)
    except InvalidArgument as exc:
        raise UsageError(str(exc)) from None

    target = None
    if args.profile_target is not None:
        from aether_perf.load.client import parse_host

        from aether_native.cli.load_target import ProfiledTarget

        _, host, port, _ = parse_host(scenario.host)
        beside = html_path or json_path or Path(os.path.abspath(f"aether-load-{os.getpid()}.html"))
        profile_path = outputs.check_writable(beside.with_suffix(".aprof"), protect=protect)
        target = ProfiledTarget(args.profile_target, host, port, profile_path).__enter__()

    progress = _ProgressPrinter(stderr)
    try:
        result = scenario.run(workers=args.workers, engine=args.engine, progress=progress)
    except InvalidArgument as exc:
        raise UsageError(str(exc)) from None
    except Exception as exc:
        raise from_exception(exc, "load test failed") from None
    finally:
        progress.done()
        if target is not None:
            if target.stop():
                print(f"aether: wrote the target's profile {target.profile} (log {target.log})", file=stderr)
            else:
                print(f"aether: the target's profile was not written (see {target.log})", file=stderr)

    from aether_perf.load.report_text import render_summary

    outcomes = check_thresholds(thresholds, result)
    render_summary(result, outcomes, sys.stdout)
    sys.stdout.flush()
    try:
        if json_path is not None:
            from aether_perf.fileio import atomic_write_text

            with atomic_write_text(json_path) as f:
                f.write(result.to_json())
        if html_path is not None:
            from aether_perf.load.report_html import write_html

            write_html(result, html_path, outcomes)
    except OSError as exc:
        raise RunError(f"cannot write the report: {exc}") from None
    for path in (json_path, html_path):
        if path is not None:
            print(f"aether: wrote {path}", file=stderr)
    if result.interrupted:
        print(f"aether: interrupted after {result.duration:.1f}s; the results above are partial", file=stderr)
        return EXIT_INTERRUPTED
    failed = [o for o in outcomes if not o.passed]
    for outcome in failed:
        print(f"aether: error: threshold failed: {outcome.describe().removeprefix('FAILED  ')}", file=stderr)
    total = result.total
    if total.count and total.ok == 0:
        kinds: dict[str, int] = {}
        for stats in result.transactions.values():
            for kind, n in stats.errors.items():
                kinds[kind] = kinds.get(kind, 0) + n
        top = max(kinds.items(), key=lambda item: item[1])
        print(
            f"aether: error: no transaction succeeded ({top[0]}: {top[1]:,} of {total.count:,})", file=stderr
        )
        return EXIT_FAILED
    return EXIT_FAILED if failed else EXIT_OK


class _ProgressPrinter:
    """Live progress on stderr: one refreshing line on a terminal, a plain line every 5 s when piped."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        try:
            self.tty = stream.isatty() and not os.environ.get("NO_COLOR")
        except (AttributeError, ValueError):
            self.tty = False
        self.last = 0.0
        self.shown = False

    def __call__(self, p: Progress) -> None:
        p95 = "-" if math.isnan(p.recent_p95) else f"{p.recent_p95 * 1e3:.1f}ms"
        line = (
            f"[{p.elapsed:5.0f}s/{p.total:.0f}s] {p.stage}: {p.users} users, {p.completed:,} done, "
            f"{p.errors:,} errors, {p.recent_rps:,.0f}/s, p95 {p95}"
        )
        if p.late or p.backlog:
            line += f", late {p.late:,}, backlog {p.backlog:,}"
        if self.tty:
            self.stream.write("\r\x1b[2K" + line)
            self.stream.flush()
            self.shown = True
        elif time.monotonic() - self.last >= 5.0:
            self.last = time.monotonic()
            print(line, file=self.stream, flush=True)

    def done(self) -> None:
        if self.tty and self.shown:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
