"""`aether memcheck`: run a script or module in-process under the AllocationTracker; report leaks.

    aether memcheck [options] [--] script.py [args ...]
    aether memcheck [options] -m package.module [args ...]

The target runs as under `aether profile` (own argv, `__main__`, exit status). Tracking starts just
before it and stops when it ends; what it allocated after the start and is still live then is the
leak. The heap snapshot is written (`aether-<name>-<pid>.heap.aprof` unless -o says where; reopen it
with `aether perf-report`) and the heap summary and leak report go to stderr. With `--fail-over
SIZE`, more leaked bytes than SIZE turn a successful run's exit status into 1.

Only the program's own stacks count as leaks: blocks kept by imports, standard-library caches, the
tracker itself or with no Python frame are totalled apart (aether_perf.analysis.leak_origin). A
full garbage collection (which also empties the interpreter's free lists) runs before the snapshot,
so unreachable cycles and free-listed objects are not reported. `--warmup N` runs the target N
times untracked first, in this process, so first-call caches of the program itself are warm too.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from aether_native.cli import outputs
from aether_native.cli.errors import EXIT_FAILED, EXIT_OK, UsageError, from_exception
from aether_native.cli.parsing import ArgumentParser, positive_int
from aether_native.cli.profile_cmd import SplitArgv, _flush, _sigint_ignored, split_argv
from aether_native.cli.target import Outcome, Runner, Target, validate
from aether_native.cli.trim import _is_runner, _is_runpy

if TYPE_CHECKING:
    from aether_perf.model.heap import HeapSnapshot

    from aether_native.memory import AllocationTracker

PROG = "aether memcheck"
USAGE = """\
aether memcheck [options] [--] script.py [args ...]
       aether memcheck [options] -m module [args ...]"""
SUFFIX = ".heap.aprof"

_NOTHING = "nothing to run: give a script or -m MODULE"


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        allow_abbrev=False,
        usage=USAGE,
        description="Run a Python script or module in this process under the allocation tracker, "
        "then write the heap snapshot and print the heap summary and a leak report (what the "
        "program allocated and still holds at its end) to stderr. The target keeps its own argv, "
        "stdout and exit status.",
    )
    what = parser.add_argument_group("what to run (one of)")
    what.add_argument("script", nargs="?", metavar="script.py [args ...]", help="a script and its arguments")
    what.add_argument(
        "-m", metavar="MODULE [args ...]", dest="module_help", help="run a module, as python -m"
    )
    how = parser.add_argument_group("tracking")
    how.add_argument(
        "--mode",
        choices=("exact", "sampled"),
        default="exact",
        help="exact: every allocation with its stack (default); sampled: stacks for a byte-sampled "
        "subset, estimates scaled up (totals stay exact)",
    )
    how.add_argument(
        "--sample-rate",
        metavar="SIZE",
        default="512KiB",
        help="sampled mode: mean bytes between samples, e.g. 512KiB (default)",
    )
    how.add_argument(
        "--series-interval",
        metavar="INTERVAL",
        default="10ms",
        help="record RSS and the tracked heap every INTERVAL for the memory-over-time chart "
        "(default 10ms; 'off' for none)",
    )
    how.add_argument(
        "--native",
        action="store_true",
        help="also track malloc/calloc/realloc/free/mmap of C extensions (e.g. numpy arrays), "
        "attributed to the Python line that called them",
    )
    leaks = parser.add_argument_group("leak check")
    leaks.add_argument(
        "--leak-check",
        choices=("summary", "full"),
        default="summary",
        help="summary: the totals (default); full: every leaking stack",
    )
    leaks.add_argument(
        "--warmup",
        type=_count,
        default=0,
        metavar="N",
        help="run the target N times untracked before the tracked run, so that first-call caches "
        "are not reported (the target must be safe to run more than once; default 0)",
    )
    leaks.add_argument(
        "--fail-over",
        metavar="SIZE",
        help="exit with status 1 when the program's own code leaked more than SIZE bytes (e.g. "
        "1MiB; imports, standard-library caches and the tracker do not count) and the program "
        "itself succeeded",
    )
    out = parser.add_argument_group("output")
    out.add_argument(
        "--checkpoint",
        metavar="INTERVAL",
        help="also write the snapshot every INTERVAL while the program runs (e.g. 30s), atomically, "
        "so a run killed for memory (OOM killer, SIGKILL) still leaves the last one",
    )
    out.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help=f"where to write the heap snapshot (default aether-<name>-<pid>{SUFFIX} here)",
    )
    out.add_argument(
        "--top", type=positive_int, default=10, metavar="N", help="stacks in the heap summary (default 10)"
    )
    out.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print neither the reports nor where the snapshot was written",
    )
    return parser


#: Our options that take a value as the next argument (needed to find where the target starts).
_VALUE_OPTIONS = (
    "--mode",
    "--sample-rate",
    "--leak-check",
    "--fail-over",
    "--warmup",
    "--checkpoint",
    "--series-interval",
    "-o",
    "--output",
    "--top",
)


def _count(value: str) -> int:
    """`--warmup`: a whole number 0..1000."""
    import argparse

    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if not 0 <= number <= 1000:
        raise argparse.ArgumentTypeError(f"must be 0..1000, got {value!r}")
    return number


def _split(argv: list[str]) -> SplitArgv:
    return split_argv(argv, _VALUE_OPTIONS)


def resolve_target(split: SplitArgv) -> Target:
    script = split.script is not None or (split.dashdash and bool(split.rest))
    if script and split.module is not None:
        raise UsageError("give only one of a script and -m MODULE")
    if split.module is not None:
        return Target("module", split.module, tuple(split.rest))
    if split.script is not None:
        return Target("script", split.script, tuple(split.rest))
    if split.dashdash and split.rest:
        return Target("script", split.rest[0], tuple(split.rest[1:]))
    raise UsageError(_NOTHING)


def _size(value: str, name: str, minimum: int) -> int:
    from aether_perf.units import parse_size

    try:
        return parse_size(value, name=name, minimum=minimum)
    except Exception as exc:
        raise from_exception(exc) from None


def run(argv: list[str], stderr: TextIO) -> int:
    split = _split(argv)
    ns = build_parser().parse_args(split.own)
    target = resolve_target(split)
    rate = _size(ns.sample_rate, "--sample-rate", 1)
    limit = _size(ns.fail_over, "--fail-over", 0) if ns.fail_over is not None else None
    if ns.output == outputs.STDOUT:
        raise UsageError(
            "aether memcheck cannot write the snapshot to stdout (the target owns it); give a file"
        )
    shown = ns.output or f"aether-{target.stem}-{os.getpid()}{SUFFIX}"
    protect = (Path(target.name),) if target.kind == "script" else ()
    path = outputs.check_writable(Path(shown), protect=protect)
    from aether_perf.units import parse_duration

    every = series = None
    try:
        if ns.checkpoint is not None:
            every = parse_duration(ns.checkpoint, name="--checkpoint", minimum=0.05)
        if ns.series_interval != "off":
            series = parse_duration(ns.series_interval, name="--series-interval", minimum=1e-4, maximum=3600)
    except Exception as exc:
        raise from_exception(exc) from None
    validate(target)
    if series is None and every is not None:
        raise UsageError("--checkpoint needs the memory series (drop --series-interval off)")
    tracker = _make_tracker(ns.mode, rate, series, ns.native)
    if every is not None:
        tracker.checkpoint_every(every, _Checkpointer(path, target, stderr))

    pid = os.getpid()
    snapshot: HeapSnapshot | None = None
    with Runner(target) as runner:
        for round_ in range(1, ns.warmup + 1):
            warm = runner.run()
            if os.getpid() != pid:
                return warm.status
            if warm.status != EXIT_OK:
                _flush(sys.stdout)
                print(
                    f"aether: warm-up run {round_} exited with status {warm.status}; not tracking",
                    file=stderr,
                )
                return warm.status
            sys.argv = [target.name if target.kind == "script" else "-m", *target.args]
        gc.collect()  # the warm-up's garbage is not the tracked run's
        _preload_traceback_printing()
        reserve = _Reserve()
        _start(tracker)
        outcome: Outcome | None = None
        try:
            outcome = runner.run()
        finally:
            # A child the program forked and let run off the end of the script ends here, as it
            # would under python: with its status, and without writing a snapshot of its own.
            if os.getpid() == pid:
                with _sigint_ignored():
                    reserve.release()  # room for the capture if the program used up memory
                    out_of_memory = outcome is not None and outcome.exception == "MemoryError"
                    try:
                        # Unreachable cycles and free-listed objects are not leaks (a full
                        # collection also empties the interpreter's free lists).
                        gc.collect()
                    except MemoryError:
                        out_of_memory = True
                    tracker.stop(before_capture=_release_main if out_of_memory else None)
                    snapshot = tracker.snapshot()
    assert outcome is not None  # Runner.run() returns whatever the target did
    if snapshot is None:
        return outcome.status
    snapshot = trim_runner_stacks(snapshot)

    from aether_perf.analysis.heap import leak_report

    with _sigint_ignored():
        _flush(sys.stdout)
        snapshot.meta.extra["command"] = target.command
        snapshot.meta.extra["exit_status"] = outcome.status
        if outcome.exception is not None:
            snapshot.meta.extra["exception"] = outcome.exception
        try:
            snapshot.save(path)
        except OSError as exc:
            raise from_exception(exc, f"cannot write '{path}'") from None
        report = leak_report(snapshot)
        if not ns.quiet:
            from aether_perf.report.heap_text import render_heap_summary, render_leak_report

            render_heap_summary(snapshot, top=ns.top, file=stderr, color=None)
            print_thread_totals(snapshot, stderr)
            render_leak_report(report, full=ns.leak_check == "full", file=stderr, color=None)
            print(
                f"aether: wrote heap snapshot to {shown} ({len(snapshot):,} live blocks)",
                file=stderr,
            )
        status = outcome.status
        if limit is not None and status == EXIT_OK and report.total_bytes > limit:
            print(
                f"aether: leak check failed: {report.total_bytes:,} bytes leaked (limit {limit:,})",
                file=stderr,
            )
            status = EXIT_FAILED
        _flush(stderr)
    return status


def print_thread_totals(snapshot: HeapSnapshot, file: TextIO) -> None:
    """The exact per-thread totals the tracker keeps (meta.extra["thread_totals"]), busiest first.
    A free counts on the thread that freed, so a thread's net may be negative."""
    from aether_perf.units import format_size

    rows = snapshot.meta.extra.get("thread_totals") or {}
    if not rows:
        return
    print(f"per-thread totals ({len(rows)} thread{'s' if len(rows) != 1 else ''}):", file=file)
    ranked = sorted(rows.items(), key=lambda kv: -int(kv[1].get("allocated_bytes", 0)))
    for tid, row in ranked:
        name = "other threads" if tid == "-1" else f"thread {tid}"
        print(
            f"  {name}: allocated {format_size(int(row['allocated_bytes']))} in "
            f"{int(row['allocations']):,} blocks, freed {format_size(int(row['freed_bytes']))} in "
            f"{int(row['frees']):,} blocks",
            file=file,
        )


def trim_runner_stacks(snapshot: HeapSnapshot) -> HeapSnapshot:
    """`snapshot` with each stack cut after its last runner frame (and the runpy frames after it),
    as `aether profile` trims its samples: the target's stacks start at its `<module>`.

    A stack whose runner frames are not followed by a `<module>` frame is the runner's own work
    (path checks, thread bookkeeping, the final collection) and is kept whole, so the leak check
    classes it as the tracker's and not the program's."""
    import dataclasses

    import numpy as np
    from aether_perf.model.heap import HeapSnapshot

    runner = [_is_runner(frame) for frame in snapshot.frames]
    if not any(runner):
        return snapshot
    runpy = [_is_runpy(frame) for frame in snapshot.frames]
    ids: dict[tuple[int, ...], int] = {}
    remap: list[int] = []
    for stack in snapshot.stacks:
        last = max((i for i, frame in enumerate(stack) if runner[frame]), default=-1)
        cut = last + 1
        while cut < len(stack) and runpy[stack[cut]]:
            cut += 1
        if last < 0 or cut >= len(stack) or snapshot.frames[stack[cut]].function != "<module>":
            trimmed = stack
        else:
            trimmed = stack[cut:]
        remap.append(ids.setdefault(trimmed, len(ids)))
    table = np.asarray(remap, dtype=np.int32)
    return HeapSnapshot(
        snapshot.frames,
        list(ids),
        stack=table[snapshot.stack] if len(snapshot.stack) else snapshot.stack,
        size=snapshot.size,
        bytes=snapshot.bytes,
        count=snapshot.count,
        tid=snapshot.tid,
        time_ns=snapshot.time_ns,
        meta=dataclasses.replace(snapshot.meta, extra=dict(snapshot.meta.extra)),
        series=snapshot.series,
    )


class _Checkpointer:
    """Writes each checkpoint snapshot to the output file (atomically: the old one stays whole
    until the new one replaces it); warns once if that fails."""

    def __init__(self, path: Path, target: Target, stderr: TextIO) -> None:
        self.path, self.target, self.stderr = path, target, stderr
        self.warned = False

    def __call__(self, snapshot: HeapSnapshot) -> None:
        try:
            snapshot = trim_runner_stacks(snapshot)
            snapshot.meta.extra["command"] = self.target.command
            snapshot.save(self.path)
        except Exception as exc:
            if not self.warned:
                self.warned = True
                print(f"aether: warning: cannot write checkpoint '{self.path}': {exc}", file=self.stderr)


#: Address space set aside while the target runs and given back before the capture: a target that
#: exhausts memory (RLIMIT_AS, a container limit) leaves room to read and save what was recorded.
#: An untouched anonymous mapping: it costs address space, not resident memory.
RESERVE_BYTES = 64 << 20


class _Reserve:
    def __init__(self) -> None:
        import mmap

        try:
            self._map: mmap.mmap | None = mmap.mmap(-1, RESERVE_BYTES)
        except (OSError, ValueError):  # already short of address space: go without
            self._map = None

    def release(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None


def _preload_traceback_printing() -> None:
    """Import now what printing the target's uncaught exception imports lazily (3.13: traceback,
    _colorize): an import right after a MemoryError, with memory still full, fails or, on CPython
    3.13.0 even without us, crashes the interpreter."""
    import importlib

    for name in ("traceback", "_colorize", "linecache", "textwrap"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def _release_main() -> None:
    """After the target ran out of memory, with the hooks stopped (its blocks are already in the
    tracker's frozen tables): drop the script's globals so that the capture has memory to run."""
    main = sys.modules.get("__main__")
    if main is not None and getattr(main, "__spec__", None) is None and hasattr(main, "__file__"):
        main.__dict__.clear()
    gc.collect()


def _make_tracker(mode: str, rate: int, series: float | None, native: bool) -> AllocationTracker:
    from aether_native.memory import AllocationTracker

    try:
        return AllocationTracker(mode=mode, sample_rate=rate, series_interval=series, native=native)
    except Exception as exc:
        raise from_exception(exc) from None


def _start(tracker: AllocationTracker) -> None:
    try:
        tracker.start()
    except Exception as exc:
        raise from_exception(exc) from None


__all__ = ["build_parser", "run"]
