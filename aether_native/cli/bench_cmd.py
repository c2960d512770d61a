"""`aether bench`: run micro-benchmarks in fresh worker processes; save, compare, gate.

    aether bench [PATHS] [--filter PATTERN] [--save NAME] [--compare BASELINE | --compare-ref REF]
                 [--fail-on-regression 5%] [--json out.json] [--html out.html] [--markdown out.md] [--quick]

PATHS are benchmark files or directories (their ``bench_*.py`` / ``*_bench.py``; default
``bench``). The framework is ``aether_perf.bench``; this module only wires the command line, the
output files and the optional instruction counter to it.

Exit statuses: 0 done (no confirmed regression, or no gate asked for); 1 a confirmed regression
under ``--fail-on-regression``, or a benchmark that failed; 2 bad input (no benchmarks, a missing
or corrupt baseline, a bad option).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from aether_native.cli import outputs
from aether_native.cli.errors import EXIT_FAILED, EXIT_OK, UsageError, from_exception
from aether_native.cli.parsing import ArgumentParser, positive_int

if TYPE_CHECKING:
    from aether_perf.bench.runner import Settings

PROG = "aether bench"

#: The worker-side hook that gives each value an instruction count, when the C core has counters.
COUNTER_HOOK = "aether_native.cli.bench_cmd:instructions_counter_hook"


def _threshold(value: str) -> float:
    """`--fail-on-regression 5%` (or `5`, meaning percent) -> 0.05."""
    text = value.strip().removesuffix("%")
    try:
        number = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percentage such as 5%, got {value!r}") from None
    if not 0 <= number < 1000:
        raise argparse.ArgumentTypeError(f"must be between 0% and 1000%, got {value!r}")
    return number / 100


def _alpha(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a probability such as 0.05, got {value!r}") from None
    if not 0 < number < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value!r}")
    return number


def _target(value: str) -> float:
    from aether_perf.units import parse_duration

    try:
        return parse_duration(value, name="--target", minimum=1e-5, maximum=60.0)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--target ")) from None


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        allow_abbrev=False,
        description="Run micro-benchmarks (declared with aether_perf.bench's @benchmark and group) in "
        "several fresh worker processes; print median, spread and noise; save the run, compare it with "
        "a saved one or with another git commit measured in the same run, and fail on a regression "
        "that is both significant and larger than the threshold.",
    )
    parser.add_argument(
        "paths", nargs="*", metavar="PATH", help="benchmark files or directories (default: bench)"
    )
    parser.add_argument(
        "--filter", metavar="PATTERN", help="only benchmarks whose id contains PATTERN (or matches the glob)"
    )
    how = parser.add_argument_group("measuring")
    how.add_argument(
        "--quick", action="store_true", help="6 processes x 3 short values: a smoke run, coarse figures"
    )
    how.add_argument(
        "--processes", type=positive_int, metavar="N", help="worker processes per side (default 10)"
    )
    how.add_argument("--values", type=positive_int, metavar="N", help="values per process (default 5)")
    how.add_argument(
        "--target", type=_target, metavar="DURATION", help="duration of one value (default 20ms)"
    )
    comparing = parser.add_argument_group("saving and comparing")
    comparing.add_argument("--save", metavar="NAME", help="save this run in the store as NAME")
    comparing.add_argument(
        "--store",
        metavar="DIR",
        default=".aether-bench",
        help="where saved runs live (default .aether-bench)",
    )
    which = comparing.add_mutually_exclusive_group()
    which.add_argument(
        "--compare",
        metavar="BASELINE",
        help="compare with a saved run (a name in the store or a results file)",
    )
    which.add_argument(
        "--compare-ref",
        metavar="REF",
        help="also benchmark git commit REF, interleaved in this run, and compare",
    )
    comparing.add_argument(
        "--fail-on-regression",
        type=_threshold,
        metavar="PCT",
        help="exit 1 when a benchmark is significantly slower and the 95%% interval of its time ratio "
        "lies wholly above 1 + PCT (e.g. 5%%); PCT is also the threshold of the verdicts (default 5%%)",
    )
    comparing.add_argument(
        "--alpha", type=_alpha, default=0.05, help="family-wise significance level (default 0.05)"
    )
    out = parser.add_argument_group("output")
    out.add_argument(
        "--json", metavar="FILE", help="write the results (and comparison) as JSON ('-' for stdout)"
    )
    out.add_argument("--html", metavar="FILE", help="write a self-contained HTML report")
    out.add_argument(
        "--markdown", metavar="FILE", help="write a GitHub-flavoured markdown summary ('-' for stdout)"
    )
    return parser


def instructions_counter_hook() -> Any:
    """Called in each worker: an object with ``start()`` and ``stop() -> instructions``, or None
    when this machine cannot count instructions (no PMU: most VMs), so comparisons rest on time
    alone there."""
    try:
        from aether_native.counters import Counters

        probe = Counters(["instructions"]).start().stop()
        if not probe["instructions"].available:
            return None
        return _InstructionCounter(Counters)
    except Exception:  # any failure turns the second opinion off, never the benchmark
        return None


class _InstructionCounter:
    """Adapter from aether_native.Counters to the worker's start()/stop()."""

    def __init__(self, counters_type: Any) -> None:
        self._type = counters_type
        self._counters: Any = None

    def start(self) -> None:
        self._counters = self._type(["instructions"]).start()

    def stop(self) -> float | None:
        reading = self._counters.stop()
        value = reading.value("instructions")
        return float(value) if isinstance(value, int | float) else None


def _counter_hook() -> str | None:
    import aether_native

    return COUNTER_HOOK if hasattr(aether_native, "Counters") else None


def _settings(args: argparse.Namespace) -> Settings:
    from dataclasses import replace

    from aether_perf.bench.runner import QUICK, Settings

    settings = QUICK if args.quick else Settings()
    changes: dict[str, Any] = {"counter_hook": _counter_hook()}
    if args.processes is not None:
        if args.processes < 2:
            raise UsageError("argument --processes: must be at least 2 (see 'aether bench --help')")
        changes["processes"] = args.processes
    if args.values is not None:
        changes["values"] = args.values
    if args.target is not None:
        changes["target"] = args.target
    return replace(settings, **changes)


def _output(value: str | None, protect: tuple[Path, ...] = ()) -> Path | None:
    if value is None or value == "-":
        return None
    return outputs.check_writable(Path(value), protect=protect)


def run(argv: list[str], stderr: TextIO) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args, stderr)
    except UsageError:
        raise
    except Exception as exc:
        from aether_perf.errors import AetherError

        if isinstance(exc, AetherError | OSError):
            raise from_exception(exc) from None
        raise


def _run(args: argparse.Namespace, stderr: TextIO) -> int:
    from aether_perf.bench import report_text
    from aether_perf.bench.comparison import compare
    from aether_perf.bench.runner import current_side, make_suite, ref_side, run
    from aether_perf.bench.store import BenchStore, write_file

    store = BenchStore(args.store)
    if args.save is not None:
        store.check_name(args.save)
    baseline_path = store.resolve(args.compare) if args.compare else None
    protect = (baseline_path,) if baseline_path else ()
    json_path = _output(args.json, protect)
    html_path = _output(args.html, protect)
    markdown_path = _output(args.markdown, protect)
    baseline = store.load(args.compare) if args.compare else None  # a corrupt file fails before any work
    settings = _settings(args)
    head = current_side(args.paths or ["bench"])
    progress = _progress(stderr)
    name = args.save or "current"
    if args.compare_ref:
        with ref_side(head, args.compare_ref) as base_side:
            results = run([head, base_side], settings, args.filter, progress)
        baseline = make_suite(args.compare_ref, results[base_side.label], settings, base_side.cwd)
    else:
        results = run([head], settings, args.filter, progress)
    directory = head.files[0].parent if head.files else None
    suite = make_suite(name, results[head.label], settings, directory)
    threshold = args.fail_on_regression if args.fail_on_regression is not None else 0.05
    report = compare(baseline, suite, threshold, args.alpha) if baseline is not None else None
    # With a machine-readable document on stdout, the human-readable tables go to stderr.
    out = stderr if "-" in (args.json, args.markdown) else sys.stdout
    if report is not None:
        for warning in report.warnings:
            print(f"aether: warning: {warning}", file=stderr)
    report_text.render_suite(suite, out)
    if report is not None:
        out.write("\n")
        report_text.render_comparison(report, out)
    out.flush()
    extra = {"comparison": report.to_document()} if report is not None else None
    if json_path is not None:
        write_file(suite, json_path, extra)
    if args.json == "-":
        import json as json_module

        from aether_perf.bench.store import to_document

        json_module.dump({**to_document(suite), **(extra or {})}, sys.stdout, indent=1, allow_nan=False)
        sys.stdout.write("\n")
    if html_path is not None or markdown_path is not None or args.markdown == "-":
        _write_reports(suite, report, baseline, store, html_path, markdown_path, args.markdown == "-")
    if args.save is not None:
        saved = store.save(suite)
        print(f"saved as {args.save!r} in {saved}", file=stderr)
    if report is not None and args.fail_on_regression is not None and report.regressions:
        names = ", ".join(c.id for c in report.regressions)
        print(f"aether: regression: {names}", file=stderr)
        return EXIT_FAILED
    return EXIT_OK


def _write_reports(
    suite: Any,
    report: Any,
    baseline: Any,
    store: Any,
    html_path: Path | None,
    markdown_path: Path | None,
    markdown_stdout: bool,
) -> None:
    from aether_perf.bench.report_html import render_html
    from aether_perf.bench.report_markdown import render_markdown
    from aether_perf.fileio import atomic_write_text

    if html_path is not None:
        page = render_html(suite, report, baseline, store.history())
        with atomic_write_text(html_path) as handle:
            handle.write(page)
    if markdown_path is not None or markdown_stdout:
        text = render_markdown(suite, report)
        if markdown_path is not None:
            with atomic_write_text(markdown_path) as handle:
                handle.write(text)
        else:
            sys.stdout.write(text)


def _progress(stderr: TextIO) -> Any:
    """A one-line progress display on a terminal; nothing when stderr is piped."""
    try:
        tty = stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    if not tty:
        return None

    def show(done: int, total: int, what: str) -> None:
        end = "\n" if done >= total else ""
        stderr.write(f"\r\x1b[2Kbenchmarking: {done}/{total} workers, {what}{end}")
        stderr.flush()

    return show


__all__ = ["build_parser", "instructions_counter_hook", "run"]
