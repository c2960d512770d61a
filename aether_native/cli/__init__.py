"""The `aether` command (console script `aether = aether_native.cli:main`; also `python -m aether_native`).

    aether profile [options] [--] script.py [args ...]     run and profile a program in-process
    aether perf-report --input run.aprof [options]         summarise or convert a saved profile
    aether memcheck [options] [--] script.py [args ...]    run a program under the allocation tracker
    aether stat [options] [--] script.py [args ...]        count hardware/software events, like perf stat
    aether bench [PATHS] [options]                         run micro-benchmarks; compare; gate on regressions
    aether monitor [options] [--pid PID | -- script.py]    live metrics, alerts, Prometheus endpoint
    aether load scenario.py [options]                      load-test an HTTP server with a scenario
    aether --version

Exit statuses: the target's own for `profile`; 2 for bad input (one `aether: error:` line on
stderr, never a traceback); 1 for a failed run; 130 after Ctrl-C.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TextIO

from aether_native.cli.errors import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CLIError,
    ParserExit,
    UsageError,
    report,
)

USAGE = """\
usage: aether profile [options] [--] script.py [args ...]
       aether profile [options] -m module [args ...]
       aether profile [options] --target script.py [-- args ...]
       aether profile --demo [-o demo.speedscope.json]
       aether perf-report --input run.aprof [--format text|html|svg|speedscope|collapsed|pprof|chrome-trace]
                          [--diff BASE.aprof] [--top N] [-o FILE]
       aether memcheck [--mode exact|sampled] [--leak-check summary|full] [--fail-over SIZE] -- script.py
       aether stat [-e EVENTS] [--per-thread] [--interval 1s] [--analyze [--lang en|zh]]
                   [--json FILE] [--] script.py [args ...]
       aether annotate run.aprof [FILE ...] [--heap run.heap.aprof] [--html DIR]
       aether diagnose [--format text|json|github] [--sarif out.sarif] [--scale-arg N1,N2] -- script.py
       aether bench [PATHS] [--filter PATTERN] [--save NAME] [--compare BASELINE | --compare-ref REF]
                    [--fail-on-regression 5%] [--json F] [--html F] [--markdown F] [--quick]
       aether monitor [--pid PID | -- script.py ARGS] [--metrics cpu,memory,io,network,threads]
                      [--interval 1s] [--alerts rules.toml] [--prometheus HOST:PORT] [--record FILE]
       aether load scenario.py [--users N | --rate R/s] [--ramp-up 30s] [--duration 2m] [--host URL]
                   [--threshold "p95<200ms" ...] [--workers N] [--engine native|locust] [--json F] [--html F]
       aether --version

commands:
  profile      run a Python script or module in-process under the sampling profiler
  perf-report  print a summary of a saved profile or heap snapshot, compare, or convert it
  memcheck     run a Python script or module under the allocation tracker; report leaks
  stat         run a Python script or module and count CPU events (perf_event); --analyze for bottlenecks
  annotate     print source files with per-line time, CPU share and bytes allocated
  diagnose     run a program (or read recordings) and report findings: hot lines, growth
               reallocations, likely O(n^2) loops; text, JSON, GitHub annotations, SARIF
  bench        run micro-benchmarks in fresh processes; save, compare, fail on a regression
  monitor      watch the machine, a process tree or a program: dashboard, alerts, Prometheus
  load         load-test an HTTP server: virtual users or an arrival rate, percentiles, thresholds

'aether COMMAND --help' describes each command's options.
"""


def version() -> str:
    """The installed distribution's version, else the package's own."""
    from importlib import metadata

    try:
        return metadata.version("aether-native")
    except metadata.PackageNotFoundError:
        pass
    import aether_native

    declared = getattr(aether_native, "__version__", None)
    if isinstance(declared, str):
        return declared
    return _source_tree_version() or "0+unknown"


def _source_tree_version() -> str | None:
    """The version in pyproject.toml, when running from a source checkout that is not installed."""
    import tomllib
    from pathlib import Path

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    try:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
    except (OSError, ValueError):
        return None
    value = project.get("version") if project.get("name") == "aether-native" else None
    return value if isinstance(value, str) else None


#: Each verb and the module under aether_native.cli that runs it (its ``run(args, stderr)``).
#: Only the chosen verb's module is imported: whatever a command imports is loaded into the process
#: before the profiled program starts, so the others must not add to it.
COMMANDS: dict[str, str] = {
    "profile": "profile_cmd",
    "perf-report": "report_cmd",
    "memcheck": "memcheck_cmd",
    "stat": "stat_cmd",
    "annotate": "annotate_cmd",
    "diagnose": "diagnose_cmd",
    "bench": "bench_cmd",
    "monitor": "monitor_cmd",
    "load": "load_cmd",
}


def _command(name: str) -> Callable[[list[str], TextIO], int]:
    import importlib

    module = importlib.import_module(f"aether_native.cli.{COMMANDS[name]}")
    run: Callable[[list[str], TextIO], int] = module.run
    return run


def main(argv: list[str] | None = None) -> int:
    """Run the `aether` command with `argv` (default: sys.argv[1:]); return the exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    stderr = sys.stderr
    try:
        return _dispatch(args, stderr)
    except CLIError as error:
        return report(error, stderr)
    except ParserExit as done:
        return done.status
    except KeyboardInterrupt:
        print("aether: interrupted", file=stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `aether perf-report ... -o - | head`: the reader left; stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not fail again
        return EXIT_FAILED


def _dispatch(args: list[str], stderr: TextIO) -> int:
    if not args:
        raise UsageError(f"no command given (commands: {', '.join(sorted(COMMANDS))}; see 'aether --help')")
    head, rest = args[0], args[1:]
    if head in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0
    if head in ("-V", "--version"):
        print(f"aether {version()}")
        return 0
    if head not in COMMANDS:
        kind = "option" if head.startswith("-") else "command"
        choices = ", ".join(sorted(COMMANDS))
        raise UsageError(
            f"unknown {kind} '{head}' (commands: {choices}; see 'aether --help')", status=EXIT_USAGE
        )
    return _command(head)(rest, stderr)


__all__ = ["main", "version"]
