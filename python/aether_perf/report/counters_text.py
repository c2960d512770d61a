"""Counter readings as text, laid out like ``perf stat``: one line per event, scaling shown.

An unavailable event prints ``<not supported>`` (or ``<not counted>`` when it never got onto the
PMU) with its reason, never a zero; a multiplexed one prints its scaled value and the share of
the time it ran, e.g. ``(62.50%)``; one taken from /proc says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from aether_perf.model.counters import SOURCE_PROCFS, CounterReading, EventCount
from aether_perf.model.finding import Finding

__all__ = ["format_event", "render_findings", "render_interval", "render_stat"]


def _comment(event: EventCount, reading: CounterReading) -> str:
    """perf stat's "# ..." column: a derived metric where this event is the numerator."""
    name = event.name
    if name == "task-clock" and reading.cpus_utilized is not None:
        return f"#  {reading.cpus_utilized:7.3f} CPUs utilized"
    if name == "instructions" and reading.ipc is not None:
        return f"#  {reading.ipc:7.2f} insn per cycle"
    if name == "cycles" and reading.ghz is not None:
        return f"#  {reading.ghz:7.3f} GHz"
    if name == "cache-misses" and reading.cache_miss_ratio is not None:
        return f"#  {reading.cache_miss_ratio * 100:7.2f}% of all cache refs"
    if name == "branch-misses" and reading.branch_miss_ratio is not None:
        return f"#  {reading.branch_miss_ratio * 100:7.2f}% of all branches"
    rate = reading.per_second(name)
    if rate is not None and name in ("context-switches", "cpu-migrations", "page-faults"):
        return f"#  {_rate(rate)}/sec"
    return ""


def _rate(value: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= scale:
            return f"{value / scale:7.3f} {unit}"
    return f"{value:7.3f}  "


def format_event(event: EventCount, reading: CounterReading) -> str:
    """One line of the table."""
    if not event.available or event.scaled is None:
        label = "<not counted>" if event.available else "<not supported>"
        why = event.reason or "the group never ran on the PMU (running time 0)"
        return f"{label:>22}      {event.name:<24}  ({why})"
    value = event.scaled
    if event.name in ("task-clock", "cpu-clock"):
        text = f"{value / 1e6:>18,.2f} msec"
    else:
        text = f"{value:>22,.0f}"
    line = f"{text}      {event.name:<24}  {_comment(event, reading)}".rstrip()
    extras = []
    coverage = event.coverage
    if coverage is not None and coverage < 1.0:
        extras.append(f"({coverage * 100:.2f}%)")
    if event.source == SOURCE_PROCFS:
        extras.append("[procfs]")
    elif event.user_only:
        extras.append("[user]")
    return f"{line}  {' '.join(extras)}".rstrip()


def render_stat(
    reading: CounterReading,
    command: Sequence[str],
    file: TextIO,
    *,
    thread_names: dict[int, str] | None = None,
) -> None:
    """The closing table: every event, the notes behind [procfs]/[user], per-thread rows."""
    print(f"\n Performance counter stats for '{' '.join(command)}':\n", file=file)
    for event in reading.events.values():
        print(format_event(event, reading), file=file)
    print(f"\n{reading.duration_ns / 1e9:>18.9f} seconds time elapsed", file=file)
    notes = sorted({f"{e.name}: {e.note}" for e in reading.events.values() if e.note})
    if notes or reading.inherit:
        print("", file=file)
    if reading.inherit:
        print("  counts include threads and child processes started by the program (inherit)", file=file)
    for note in notes:
        print(f"  {note}", file=file)
    if reading.threads:
        names = thread_names or {}
        print("\n Per thread:", file=file)
        header = "".join(f"{name:>20}" for name in reading.events)
        print(f"{'tid':>10}  {'name':<20}{header}", file=file)
        for tid, part in sorted(reading.threads.items()):
            cells = "".join(f"{_cell(part.events[name]):>20}" for name in reading.events)
            print(f"{tid:>10}  {names.get(tid, '')[:20]:<20}{cells}", file=file)
    file.flush()


def _cell(event: EventCount) -> str:
    value = event.scaled
    if value is None:
        return "-"
    if event.name in ("task-clock", "cpu-clock"):
        return f"{value / 1e6:,.2f} ms"
    return f"{value:,.0f}"


def render_interval(delta: CounterReading, elapsed_s: float, file: TextIO, *, header: bool = False) -> None:
    """One block per interval (perf stat -I): time since start, then each event's delta."""
    if header:
        print(f"#{'time':>13} {'counts':>22} {'unit events':<24}", file=file)
    for event in delta.events.values():
        if not event.available:
            continue  # the closing table says why, once
        line = format_event(event, delta)
        print(f"{elapsed_s:14.6f} {line}", file=file)
    file.flush()


def render_findings(findings: Sequence[Finding], file: TextIO, *, lang: str = "en") -> None:
    """The bottleneck report: fired rules with their suggestions, then what was not evaluated."""
    zh = lang == "zh"
    print("\n 瓶颈分析:" if zh else "\n Bottleneck analysis:", file=file)
    fired = [f for f in findings if f.evaluated and f.severity != "info"]
    other = [f for f in findings if f.evaluated and f.severity == "info"]
    skipped = [f for f in findings if not f.evaluated]
    if not fired:
        print(
            "  未发现瓶颈（在可评估的规则中）"
            if zh
            else "  no bottleneck found by the rules that could be evaluated",
            file=file,
        )
    for finding in fired:
        print(f"  [{finding.severity}] {finding.title}: {finding.message}", file=file)
        for suggestion in finding.suggestions:
            print(f"      - {suggestion}", file=file)
    for finding in other:
        print(f"  [info] {finding.title}: {finding.message}", file=file)
    for finding in skipped:
        label = "未评估" if zh else "not evaluated"
        print(f"  [{label}] {finding.title}: {finding.message.removeprefix('not evaluated: ')}", file=file)
    file.flush()
