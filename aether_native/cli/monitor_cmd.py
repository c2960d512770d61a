"""`aether monitor`: live metrics of the machine, a process tree, or a program it starts.

    aether monitor [--pid PID | -- script.py ARGS] [--metrics cpu,memory,io,network,threads]
                   [--interval 1s] [--history 60] [--alerts rules.toml] [--prometheus 127.0.0.1:9464]
                   [--record metrics.jsonl] [--no-tui] [--duration 10s]

A dashboard on a terminal (textual), plain lines otherwise or with --no-tui. A program given after
`--` runs as a child process (a .py file under this Python, anything else as a command) and the
monitor follows its process tree; the program keeps its output (shown after the dashboard closes,
when there is one) and `aether monitor` exits with its status. --pid follows an existing process;
when it exits the monitor says so and exits 0. --duration stops monitoring (a started program is
still waited for). Everything here is aether_perf.monitor; this module parses and wires.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from aether_native.cli import outputs
from aether_native.cli.errors import EXIT_INTERRUPTED, EXIT_OK, RunError, UsageError
from aether_native.cli.parsing import ArgumentParser, duration_arg, positive_int

if TYPE_CHECKING:
    from aether_perf.monitor.alerts import AlertEvent
    from aether_perf.monitor.session import MonitorSession

PROG = "aether monitor"


def build_parser() -> ArgumentParser:
    from aether_perf.monitor.metrics import GROUPS, SERIES

    parser = ArgumentParser(
        prog=PROG,
        allow_abbrev=False,
        description="Watch CPU, memory, disk and network throughput and threads of the machine, a "
        "process tree (--pid) or a program started after '--'; alert on thresholds and trends, "
        "serve Prometheus metrics, record to JSON lines.",
        epilog="series for alert rules: " + ", ".join(SERIES),
    )
    parser.add_argument("--pid", type=int, metavar="PID", help="monitor this process and its descendants")
    parser.add_argument(
        "--metrics",
        default=",".join(GROUPS),
        metavar="LIST",
        help=f"comma-separated groups to collect (default: {','.join(GROUPS)})",
    )
    parser.add_argument("--interval", default="1s", metavar="DURATION", help="sampling period (default 1s)")
    parser.add_argument(
        "--history", type=positive_int, default=60, metavar="N", help="points kept for charts (default 60)"
    )
    parser.add_argument("--alerts", metavar="RULES", help="alert rules and channels (TOML)")
    parser.add_argument(
        "--prometheus", metavar="HOST:PORT", help="serve Prometheus metrics there (e.g. 127.0.0.1:9464)"
    )
    parser.add_argument("--record", metavar="FILE", help="write every sample and alert to FILE (JSON lines)")
    parser.add_argument("--no-tui", action="store_true", help="plain lines instead of the dashboard")
    parser.add_argument(
        "--duration", type=duration_arg, metavar="DURATION", help="stop monitoring after this"
    )
    return parser


def run(argv: list[str], stderr: TextIO) -> int:
    options, program = _split(argv)
    ns = build_parser().parse_args(options)
    from aether_perf.errors import InvalidArgument
    from aether_perf.monitor.metrics import ProcessGone

    if ns.pid is not None and program:
        raise UsageError("give either --pid or a program after '--', not both")
    if program is not None and not program:
        raise UsageError("no program after '--'")
    try:
        return _run(ns, program or None, stderr)
    except ProcessGone as exc:
        raise UsageError(str(exc)) from None
    except InvalidArgument as exc:
        raise UsageError(str(exc)) from None


def _split(argv: list[str]) -> tuple[list[str], list[str] | None]:
    if "--" in argv:
        at = argv.index("--")
        return argv[:at], argv[at + 1 :]
    return argv, None


def _run(ns: object, program: list[str] | None, stderr: TextIO) -> int:
    from aether_perf.monitor import AlertSystem, Dispatcher, Monitor
    from aether_perf.monitor.alerts import rules_for
    from aether_perf.monitor.metrics import parse_metrics, series_of
    from aether_perf.monitor.monitor import MAX_INTERVAL, MIN_INTERVAL
    from aether_perf.monitor.session import MonitorSession
    from aether_perf.units import parse_duration

    args = vars(ns)
    groups = parse_metrics(args["metrics"])
    interval = parse_duration(args["interval"], name="--interval", minimum=MIN_INTERVAL, maximum=MAX_INTERVAL)
    config = None
    if args["alerts"] is not None:
        from aether_perf.monitor.rules import load_rules

        config = load_rules(args["alerts"])
        collected = series_of(groups)
        for rule in config.rules:
            if rule.metric not in collected:
                raise UsageError(
                    f"rule '{rule.name}' watches {rule.metric}, "
                    f"which --metrics {args['metrics']} does not collect"
                )
    record_path = None
    if args["record"] is not None:
        protect = (Path(program[0]),) if program else ()
        record_path = outputs.check_writable(Path(args["record"]), protect=protect)
    listen = None
    if args["prometheus"] is not None:
        from aether_perf.monitor.prometheus import parse_listen_address

        listen = parse_listen_address(args["prometheus"])
    tui = not args["no_tui"] and sys.stdout.isatty() and sys.stdin.isatty()
    if tui and importlib.util.find_spec("textual") is None:
        print(
            "aether: the dashboard needs textual (pip install 'aether-native[monitor]'); printing lines",
            file=stderr,
        )
        tui = False
    if listen is not None and importlib.util.find_spec("prometheus_client") is None:
        raise UsageError("--prometheus needs prometheus_client: pip install 'aether-native[monitor]'")

    child: subprocess.Popen[bytes] | None = None
    child_log = None
    pid = args["pid"]
    if program:
        child, child_log = _start(program, capture=tui)
        pid = child.pid
    started = time.monotonic()
    notes: list[str] = []
    dispatcher = exporter = recorder = None
    try:
        monitor = Monitor(groups, interval, pid=pid, history=args["history"])
        alerts = None
        if config is not None:
            dispatcher = Dispatcher(config.channels, on_error=notes.append if tui else _warner(stderr))
            for warning in dispatcher.probe():
                print(f"aether: warning: {warning}", file=stderr, flush=True)
            labels = {"scope": monitor.collector.scope, "host": os.uname().nodename}
            alerts = AlertSystem(rules_for(monitor.series, config.rules), dispatcher, labels=labels)
        if listen is not None:
            from aether_perf.monitor.prometheus import PrometheusExporter

            exporter = PrometheusExporter(*listen, scope=monitor.collector.scope)
            print(f"aether: serving Prometheus metrics on {exporter.url}", file=stderr, flush=True)
        if record_path is not None:
            from aether_perf.errors import ProfileFormatError
            from aether_perf.monitor.record import Recorder

            try:
                recorder = Recorder(
                    record_path, scope=monitor.collector.scope, interval=interval, series=monitor.series
                )
            except ProfileFormatError as exc:
                raise UsageError(str(exc)) from None
            except OSError as exc:
                raise RunError(f"cannot write '{record_path}': {exc.strerror or exc}") from None
        session = MonitorSession(monitor, alerts, exporter, recorder)
        session.notes = notes  # channel failures, shown on the dashboard
        ended = _dashboard(session, args["duration"]) if tui else _plain(session, args["duration"], stderr)
    except KeyboardInterrupt:
        ended = "interrupted"
    finally:
        if dispatcher is not None:
            dispatcher.close(timeout=5.0)
        if exporter is not None:
            exporter.close()
        if recorder is not None:
            recorder.close()
    for note in notes:
        print(f"aether: warning: {note}", file=stderr)
    if record_path is not None:
        print(f"aether: recorded to {os.path.relpath(record_path)}", file=stderr)
    return _finish(ended, child, child_log, args["pid"], started, stderr)


def _start(program: list[str], capture: bool) -> tuple[subprocess.Popen[bytes], TextIO | None]:
    first = program[0]
    if first.endswith(".py"):
        if not Path(first).is_file():
            raise UsageError(f"no such script: '{first}'")
        command = [sys.executable, *program]
    else:
        command = program
    log = tempfile.TemporaryFile("w+") if capture else None  # the dashboard owns the screen
    try:
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT if log else None)
    except OSError as exc:
        raise UsageError(f"cannot run '{first}': {exc.strerror or exc}") from None
    return child, log


def _warner(stderr: TextIO) -> Callable[[str], None]:
    def warn(message: str) -> None:
        print(f"aether: warning: {message}", file=stderr, flush=True)

    return warn


def _dashboard(session: MonitorSession, duration: float | None) -> str:
    from aether_perf.monitor.dashboard import Dashboard

    app = Dashboard(session, duration=duration)
    app.run()
    if app.error is not None:
        raise app.error
    return app.ended or "quit"


def _plain(session: MonitorSession, duration: float | None, stderr: TextIO) -> str:
    from aether_perf.monitor.display import plain_line
    from aether_perf.monitor.metrics import ProcessGone, Sample

    def show(sample: Sample) -> None:
        events = session.handle(sample)
        print(plain_line(sample), flush=True)
        for event in events:
            print(_event_line(event), flush=True)
        for text in session.forecasts():
            print(f"forecast: {text}", flush=True)

    try:
        session.monitor.run(show, duration=duration)
    except ProcessGone as exc:
        return str(exc)
    return "duration"


def _event_line(event: AlertEvent) -> str:
    suffix = "" if event.notified else " (cool-down: not notified)"
    return f"alert: {event.message}{suffix}"


def _finish(
    ended: str,
    child: subprocess.Popen[bytes] | None,
    child_log: TextIO | None,
    pid: int | None,
    started: float,
    stderr: TextIO,
) -> int:
    elapsed = time.monotonic() - started
    if child is not None:
        if child.poll() is None:
            print(
                f"aether: monitoring stopped; waiting for the program (PID {child.pid}) to exit "
                "(Ctrl-C interrupts it)",
                file=stderr,
                flush=True,
            )
        try:
            status = child.wait()
        except KeyboardInterrupt:
            child.terminate()
            status = child.wait()
            ended = "interrupted"
        if child_log is not None:
            child_log.seek(0)
            sys.stdout.write(child_log.read())
            sys.stdout.flush()
            child_log.close()
        how = f"exited with status {status}" if status >= 0 else f"was killed by signal {-status}"
        print(f"aether: the monitored program {how} (monitored {elapsed:.1f}s)", file=stderr)
        if status < 0:
            return 128 - status
        return status
    if ended == "interrupted":
        print("aether: interrupted", file=stderr)
        return EXIT_INTERRUPTED
    if pid is not None and ended.startswith("process"):
        print(f"aether: process {pid} exited; monitoring stopped after {elapsed:.1f}s", file=stderr)
    return EXIT_OK
