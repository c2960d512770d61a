"""`aether diagnose`: run a program under the sampler and the allocation tracker and report findings.

    aether diagnose [options] [--] script.py [args ...]
    aether diagnose [options] -m module [args ...]
    aether diagnose [options] --input run.aprof [--input run.heap.aprof ...]

Each finding has a location (file:line), the evidence (numbers) and a suggestion: hot lines,
lines that grow one object again and again, allocation-heavy lines, and, with --scale-arg N1,N2,
super-linear loops ("likely O(n^2)"): the program runs once per size with `{n}` in its arguments
replaced by the size, and each function's time is fitted against n on a log-log scale. The
program runs under the sampler (once per size), then once more under the allocation tracker (at
the largest size; skipped with --memory off): the tracker slows allocating lines, so recording
both at once would skew the time the sampler sees. With
--input, saved profiles / heap snapshots are read instead (with --scale-arg, one profile per size
in the same order).

Every sampled run also records lock contention, I/O and thread scheduling (the recorders of
`aether profile --locks --io --sched`, cli/tracking.py, stored in the profile the same way) and
the process's counters (task-clock, page-faults, context-switches and the hardware events where
the machine has them; stored in profile.meta.extra["counters"]); --no-locks, --no-io, --no-sched
and --no-counters turn each off. Every sampled run gets the same recorders, so the super-linear
fit compares like with like; the findings come from the largest run. Contended locks are
reported at the line that created the lock; a counter rule the machine cannot evaluate (no PMU)
is an info finding that says so.

GIL contention is not checked on a run: it needs a wall-mode profile (only wall mode samples
threads while they wait), and sampling in wall mode would count blocked and idle threads as
"hot" (a thread waiting on a lock or a socket would top the hot-line list) and add their
waiting time to the super-linear fit. Diagnose samples CPU time; give a wall-mode profile
(`aether profile --mode wall`) with --input to have the GIL judged.

The report goes to stdout after the program's own output (or to -o FILE) as text, JSON or GitHub
workflow commands (--format github); --sarif FILE also writes SARIF 2.1.0. The exit status is the
program's, unless --fail-on LEVEL turns findings of that severity into 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from aether_native.cli import outputs
from aether_native.cli.errors import EXIT_FAILED, EXIT_OK, RunError, UsageError, from_exception
from aether_native.cli.memcheck_cmd import trim_runner_stacks
from aether_native.cli.parsing import ArgumentParser, interval_arg, positive_int
from aether_native.cli.profile_cmd import SplitArgv, _flush, _sigint_ignored, split_argv
from aether_native.cli.recorded import split_recordings
from aether_native.cli.target import Outcome, Runner, Target, validate
from aether_native.cli.tracking import Trackers
from aether_native.cli.trim import drop_threads, trim_runner_frames

if TYPE_CHECKING:
    from aether_perf.diagnose import Evidence, Settings
    from aether_perf.model import Finding, Profile
    from aether_perf.model.counters import CounterReading
    from aether_perf.model.heap import HeapSnapshot

    from aether_native.counters import Counters

PROG = "aether diagnose"
USAGE = """\
aether diagnose [options] [--] script.py [args ...]
       aether diagnose [options] -m module [args ...]
       aether diagnose [options] --input run.aprof [--input run.heap.aprof ...]"""
PLACEHOLDER = "{n}"
#: Evidence.extra key of the notes a run adds to the report (counters that could not start).
NOTES_KEY = "notes"
FORMATS = ("text", "json", "github")
#: Sampled allocation tracking by default: the cheaper mode in bench/memory_overhead.py (on the
#: int-heavy example both cost several times the run, bench/diagnose_overhead.py).
DEFAULT_MEMORY = "sampled"
DEFAULT_SAMPLE_RATE = "64KiB"

_VALUE_OPTIONS = (
    "--format",
    "--sarif",
    "-o",
    "--output",
    "--input",
    "-i",
    "--scale-arg",
    "--memory",
    "--sample-rate",
    "--interval",
    "--hot-share",
    "--slope",
    "--min-growths",
    "--fail-on",
    "--save",
)


def _float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not number >= 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a non-negative number, got {value!r}")
    return number


def _sizes(value: str) -> list[float]:
    parts = [p.strip() for p in value.split(",")]
    try:
        sizes = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 1000,2000, got {value!r}") from None
    if len(sizes) < 2 or any(not s > 0 or s == float("inf") for s in sizes):
        raise argparse.ArgumentTypeError(f"expected two or more positive sizes like 1000,2000, got {value!r}")
    if len(set(sizes)) != len(sizes):
        raise argparse.ArgumentTypeError(f"the sizes must differ, got {value!r}")
    return sizes


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        allow_abbrev=False,
        usage=USAGE,
        description="Run a Python program under the sampler and allocation tracker (or read saved "
        "recordings) and report performance findings with their location, evidence and a suggestion.",
    )
    parser.add_argument(
        "script", nargs="?", metavar="script.py [args ...]", help="the program and its arguments"
    )
    parser.add_argument(
        "-m", metavar="MODULE [args ...]", dest="module_help", help="run a module, as python -m"
    )
    parser.add_argument(
        "-i",
        "--input",
        action="append",
        default=[],
        metavar="FILE",
        help="read a saved profile or heap snapshot",
    )
    parser.add_argument(
        "--scale-arg",
        type=_sizes,
        metavar="N1,N2",
        help="run once per size with {n} in the arguments replaced by it (or: the sizes of the "
        "--input profiles) and flag functions whose time grows faster than n",
    )
    parser.add_argument("--format", choices=FORMATS, default="text", help="text (default), json or github")
    parser.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE instead of stdout")
    parser.add_argument("--sarif", metavar="FILE", help="also write the findings as SARIF 2.1.0")
    parser.add_argument(
        "--save",
        metavar="NAME",
        help="keep the recordings: NAME.aprof (the largest run's profile) and NAME.heap.aprof, "
        "for 'aether annotate NAME.aprof --heap NAME.heap.aprof'",
    )
    parser.add_argument(
        "--memory",
        choices=("sampled", "exact", "off"),
        default=DEFAULT_MEMORY,
        help="allocation tracking: sampled (default, low overhead), exact or off",
    )
    parser.add_argument(
        "--sample-rate",
        default=DEFAULT_SAMPLE_RATE,
        metavar="SIZE",
        help="sampled tracking: mean bytes between samples",
    )
    for name, what in (
        ("locks", "lock contention tracking"),
        ("io", "disk and network I/O tracking"),
        ("sched", "thread scheduling monitoring"),
        ("counters", "hardware/software counters"),
    ):
        parser.add_argument(f"--no-{name}", action="store_true", help=f"turn off {what}")
    parser.add_argument(
        "--interval", type=interval_arg, default=0.001, metavar="DURATION", help="sampling interval"
    )
    parser.add_argument(
        "--hot-share", type=_float, metavar="PCT", help="hot line: share of the run (default 20)"
    )
    parser.add_argument("--slope", type=_float, metavar="K", help="super-linear: log-log slope (default 1.5)")
    parser.add_argument(
        "--min-growths", type=positive_int, metavar="N", help="growth reallocations (default 32)"
    )
    parser.add_argument(
        "--fail-on",
        choices=("error", "warning", "never"),
        default="never",
        help="exit 1 when a finding of this severity or worse is reported (and the program succeeded)",
    )
    return parser


def _split(argv: list[str]) -> SplitArgv:
    return split_argv(argv, _VALUE_OPTIONS)


def _target(split: SplitArgv) -> Target | None:
    script = split.script is not None or (split.dashdash and bool(split.rest))
    if script and split.module is not None:
        raise UsageError("give only one of a script and -m MODULE")
    if split.module is not None:
        return Target("module", split.module, tuple(split.rest))
    if split.script is not None:
        return Target("script", split.script, tuple(split.rest))
    if split.dashdash and split.rest:
        return Target("script", split.rest[0], tuple(split.rest[1:]))
    return None


def _settings(ns: argparse.Namespace) -> Settings:
    from aether_perf.diagnose import Settings

    values = {}
    if ns.hot_share is not None:
        values["hot_share"] = ns.hot_share
    if ns.slope is not None:
        values["slope"] = ns.slope
    if ns.min_growths is not None:
        values["min_growths"] = ns.min_growths
    return Settings(**values)


def _size_text(n: float) -> str:
    return str(int(n)) if n == int(n) else repr(n)


def run(argv: list[str], stderr: TextIO) -> int:
    split = _split(argv)
    ns = build_parser().parse_args(split.own)
    target = _target(split)
    if target is None and not ns.input:
        raise UsageError("nothing to diagnose: give a script, -m MODULE or --input FILE")
    if target is not None and ns.input:
        raise UsageError("give either a program to run or --input files, not both")
    settings = _settings(ns)
    protect = (Path(target.name),) if target is not None and target.kind == "script" else ()
    destinations = [Path(p) for p in (ns.output, ns.sarif) if p is not None and p != outputs.STDOUT]
    for path in destinations:
        outputs.check_writable(path, protect=protect + tuple(Path(p) for p in ns.input))
    if ns.output is not None and ns.sarif is not None and Path(ns.output) == Path(ns.sarif):
        raise UsageError("-o and --sarif name the same file")
    saves: list[Path] = []
    if ns.save is not None:
        if target is None:
            raise UsageError("--save keeps the recordings of a run; with --input they are saved already")
        saves = [Path(ns.save + ".aprof"), Path(ns.save + ".heap.aprof")]
        for path in saves:
            outputs.check_writable(path, protect=protect)
        if {str(p) for p in saves} & {str(p) for p in destinations}:
            raise UsageError("--save names the same file as -o or --sarif")
    if target is not None:
        try:
            evidence, status = _record(target, ns, stderr)
        except _ChildDone as done:
            return done.status
    else:
        evidence, status = _read_inputs(ns), EXIT_OK
    from aether_perf.diagnose import diagnose

    try:
        findings = diagnose(evidence, settings)
    except Exception as exc:
        raise from_exception(exc) from None
    notes = _notes(evidence, ns)
    with _sigint_ignored():
        _flush(sys.stdout)
        _save(evidence, saves, stderr)
        _emit(findings, ns, notes)
        if ns.sarif is not None:
            from aether_perf.export import sarif

            from aether_native.cli import version

            try:
                sarif.write(findings, ns.sarif, tool_version=version())
            except OSError as exc:
                raise RunError(f"cannot write '{ns.sarif}': {exc.strerror or exc}") from None
            print(f"aether: wrote SARIF ({len(findings)} results) to {ns.sarif}", file=stderr)
        _flush(stderr)
    levels = {"error": ("error",), "warning": ("error", "warning"), "never": ()}[ns.fail_on]
    if status == EXIT_OK and any(f.severity in levels for f in findings):
        return EXIT_FAILED
    return status


def _save(evidence: Evidence, paths: list[Path], stderr: TextIO) -> None:
    if not paths:
        return
    for item, path in zip((evidence.profile, evidence.heap), paths, strict=True):
        if item is None:
            continue
        try:
            item.save(path)
        except OSError as exc:
            raise RunError(f"cannot write '{path}': {exc.strerror or exc}") from None
        print(f"aether: wrote {path}", file=stderr)


def _notes(evidence: Evidence, ns: argparse.Namespace) -> list[str]:
    notes = []
    if len(evidence.scaling) < 2:
        notes.append("super-linear loops not checked: give --scale-arg N1,N2 (and {n} in the arguments)")
    if evidence.heap is None:
        notes.append(
            "allocations not checked: no heap snapshot" + (" (--memory off)" if ns.memory == "off" else "")
        )
    if evidence.profile is not None and evidence.profile.meta.mode != "wall":
        notes.append(
            "GIL contention not checked: it needs a wall-mode profile "
            "(aether profile --mode wall -o run.aprof, then aether diagnose --input run.aprof)"
        )
    notes.extend(evidence.extra.get(NOTES_KEY, ()))
    return notes


def _emit(findings: list[Finding], ns: argparse.Namespace, notes: list[str]) -> None:
    from aether_perf.diagnose import render_github, render_json, render_text

    def write(stream: TextIO, color: bool | None) -> None:
        if ns.format == "json":
            stream.write(render_json(findings, extra={"notes": notes}))
        elif ns.format == "github":
            stream.write(render_github(findings))
        else:
            render_text(findings, file=stream, color=color, notes=notes)

    if ns.output is None or ns.output == outputs.STDOUT:
        write(sys.stdout, None)
        _flush(sys.stdout)
        return
    from aether_perf.fileio import atomic_write_text

    try:
        with atomic_write_text(ns.output) as handle:
            write(handle, False)
    except OSError as exc:
        raise RunError(f"cannot write '{ns.output}': {exc.strerror or exc}") from None


def _read_inputs(ns: argparse.Namespace) -> Evidence:
    from aether_perf.diagnose import Evidence

    profiles, heaps = split_recordings([Path(p) for p in ns.input])
    if len(heaps) > 1:
        raise UsageError("give at most one heap snapshot")
    evidence = Evidence(heap=heaps[0] if heaps else None)
    if ns.scale_arg is not None:
        if len(profiles) != len(ns.scale_arg):
            raise UsageError(
                f"--scale-arg gives {len(ns.scale_arg)} sizes but {len(profiles)} profile(s) were given"
            )
        evidence.scaling = list(zip(ns.scale_arg, profiles, strict=True))
        evidence.profile = profiles[ns.scale_arg.index(max(ns.scale_arg))]
    else:
        if len(profiles) > 1:
            raise UsageError("several profiles need --scale-arg with one size per profile")
        evidence.profile = profiles[0] if profiles else None
    return evidence


def _record(target: Target, ns: argparse.Namespace, stderr: TextIO) -> tuple[Evidence, int]:
    from aether_perf.diagnose import Evidence

    sizes: list[float] = sorted(ns.scale_arg) if ns.scale_arg is not None else []
    if sizes and not any(PLACEHOLDER in arg for arg in target.args):
        raise UsageError("--scale-arg needs {n} in the program's arguments, where each size goes")
    rate = _size(ns.sample_rate)
    validate(target)
    evidence = Evidence()
    status = EXIT_OK
    # Time and allocations are recorded in separate runs: the allocation tracker slows every
    # allocating line, which would skew the time shares and slopes the sampler measures.
    targets = [(n, _substitute(target, n)) for n in sizes] or [(0.0, target)]
    runs = [(n, current, "time") for n, current in targets]
    if ns.memory != "off":
        runs.append((*targets[-1], "memory"))
    for index, (n, current, what) in enumerate(runs):
        if len(runs) > 1 and ns.format == "text":
            size = f" with n={_size_text(n)}" if sizes else ""
            kind = "sampling" if what == "time" else f"allocation tracking ({ns.memory})"
            print(f"aether: run {index + 1}/{len(runs)}{size}: {kind}", file=stderr)
        recorded: Profile | HeapSnapshot | None
        if what == "time":
            profile, outcome = _sample_once(current, ns, evidence)
            if profile is not None:
                if sizes:
                    evidence.scaling.append((n, profile))
                evidence.profile = profile
            recorded = profile
        else:
            heap, outcome = _track_once(current, ns.memory, rate)
            evidence.heap = recorded = heap
        status = outcome.status
        if recorded is None:  # a forked child of the program that ran off the end: its status
            raise _ChildDone(status)
        if status != EXIT_OK:
            print(f"aether: the program exited with status {status}; diagnosing what ran", file=stderr)
            break
    return evidence, status


def _substitute(target: Target, n: float) -> Target:
    text = _size_text(n)
    return Target(target.kind, target.name, tuple(arg.replace(PLACEHOLDER, text) for arg in target.args))


def _size(value: str) -> int:
    from aether_perf.units import parse_size

    try:
        return parse_size(value, name="--sample-rate", minimum=1)
    except Exception as exc:
        raise from_exception(exc) from None


def _make_counters(ns: argparse.Namespace, evidence: Evidence) -> Counters | None:
    """Counters for the run, or None (turned off, or this build/machine has none: noted)."""
    if ns.no_counters:
        return None
    try:
        from aether_native.counters import DEFAULT_EVENTS, Counters

        return Counters(DEFAULT_EVENTS)
    except Exception as exc:  # an aether-native without counters, or a refused event list
        evidence.extra.setdefault(NOTES_KEY, []).append(f"counters not recorded: {exc}")
        return None


def _sample_once(
    target: Target, ns: argparse.Namespace, evidence: Evidence
) -> tuple[Profile | None, Outcome]:
    """Run the target once under the Sampler (cpu mode) with the lock/I-O/scheduling recorders
    and the counters; None in a forked child. The recorders' results go into the profile."""
    from aether_native import Sampler

    try:
        sampler = Sampler(interval=ns.interval, mode="cpu")
    except Exception as exc:
        raise from_exception(exc) from None
    # Made before sampling starts (Trackers imports its modules now) and before lock tracking
    # (the counters' own lock stays a plain one).
    trackers = Trackers(locks=not ns.no_locks, io=not ns.no_io, sched=not ns.no_sched)
    counters = _make_counters(ns, evidence)
    pid = os.getpid()
    profile: Profile | None = None
    reading: CounterReading | None = None
    with Runner(target) as runner:
        try:
            sampler.start()
        except Exception as exc:
            raise from_exception(exc, "could not start the sampler") from None
        try:
            with trackers:
                counting = _start_counters(counters, evidence)
                try:
                    outcome = runner.run()
                finally:
                    if counting and counters is not None and os.getpid() == pid:
                        reading = counters.stop()
        finally:
            if os.getpid() == pid:
                with _sigint_ignored():
                    profile = sampler.stop()
    if profile is None:
        return None, outcome
    profile = drop_threads(trim_runner_frames(profile), trackers.own_threads)
    trackers.attach(profile)
    if reading is not None:
        from aether_perf.diagnose.sources import COUNTERS_KEY

        profile.meta.extra[COUNTERS_KEY] = reading.to_dict()
    return profile, outcome


def _start_counters(counters: Counters | None, evidence: Evidence) -> bool:
    if counters is None:
        return False
    try:
        counters.start()
    except Exception as exc:
        evidence.extra.setdefault(NOTES_KEY, []).append(f"counters not recorded: {exc}")
        return False
    return True


def _track_once(target: Target, mode: str, rate: int) -> tuple[HeapSnapshot | None, Outcome]:
    """Run the target once under the AllocationTracker; None in a forked child."""
    from aether_native import AllocationTracker

    try:
        tracker = AllocationTracker(mode=mode, sample_rate=rate)
    except Exception as exc:
        raise from_exception(exc) from None
    pid = os.getpid()
    heap: HeapSnapshot | None = None
    with Runner(target) as runner:
        try:
            tracker.start()
        except Exception as exc:
            raise from_exception(exc, "could not start the allocation tracker") from None
        try:
            outcome = runner.run()
        finally:
            if os.getpid() == pid:
                with _sigint_ignored():
                    tracker.stop()
                    heap = tracker.snapshot()
    if heap is None:
        return None, outcome
    return trim_runner_stacks(heap), outcome


class _ChildDone(Exception):
    """A child the program forked reached the end of the script inside our run loop."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


__all__ = ["build_parser", "run"]
