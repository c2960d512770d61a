"""`aether memcheck`: run a script or module in-process under the AllocationTracker; report leaks.

    aether memcheck [options] [--] script.py [args ...]
    aether memcheck [options] -m package.module [args ...]

The target runs as under `aether profile` (own argv, `__main__`, exit status). Tracking starts just
before it and stops when it ends; what it allocated after the start and is still live then is the
leak. The heap snapshot is written (`aether-<name>-<pid>.heap.aprof` unless -o says where; reopen it
with `aether perf-report`) and the heap summary and leak report go to stderr. With `--fail-over
SIZE`, more leaked bytes than SIZE turn a successful run's exit status into 1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from aether_native.cli import outputs
from aether_native.cli.errors import EXIT_FAILED, EXIT_OK, UsageError, from_exception
from aether_native.cli.parsing import ArgumentParser, positive_int
from aether_native.cli.profile_cmd import SplitArgv, _flush, _sigint_ignored, split_argv
from aether_native.cli.target import Runner, Target, validate
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
        "--fail-over",
        metavar="SIZE",
        help="exit with status 1 when more than SIZE bytes leaked (e.g. 1MiB) and the program "
        "itself succeeded",
    )
    out = parser.add_argument_group("output")
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
_VALUE_OPTIONS = ("--mode", "--sample-rate", "--leak-check", "--fail-over", "-o", "--output", "--top")


def _split(argv: list[str]) -> SplitArgv:
    """split_argv, with this verb's value options joined first (`--top 5` -> `--top=5`)."""
    joined: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--" or token == "-m" or (token.startswith("-m") and not token.startswith("--")):
            joined.extend(argv[i:])
            break
        if token in _VALUE_OPTIONS and i + 1 < len(argv):
            joined.append(f"{token}={argv[i + 1]}")
            i += 2
            continue
        if not token.startswith("-") or token == "-":  # the script: the rest is its own
            joined.extend(argv[i:])
            break
        joined.append(token)
        i += 1
    return split_argv(joined)


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
    validate(target)
    tracker = _make_tracker(ns.mode, rate, ns.native)

    pid = os.getpid()
    snapshot: HeapSnapshot | None = None
    with Runner(target) as runner:
        _start(tracker)
        try:
            outcome = runner.run()
        finally:
            # A child the program forked and let run off the end of the script ends here, as it
            # would under python: with its status, and without writing a snapshot of its own.
            if os.getpid() == pid:
                with _sigint_ignored():
                    tracker.stop()
                    snapshot = tracker.snapshot()
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
    as `aether profile` trims its samples: the target's stacks start at its `<module>`."""
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
        trimmed = stack if last < 0 else (stack[cut:] if cut < len(stack) else stack[last:])
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
    )


def _make_tracker(mode: str, rate: int, native: bool) -> AllocationTracker:
    from aether_native.memory import AllocationTracker

    try:
        return AllocationTracker(mode=mode, sample_rate=rate, native=native)
    except Exception as exc:
        raise from_exception(exc) from None


def _start(tracker: AllocationTracker) -> None:
    try:
        tracker.start()
    except Exception as exc:
        raise from_exception(exc) from None


__all__ = ["build_parser", "run"]
