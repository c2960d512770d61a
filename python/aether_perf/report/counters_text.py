"""Counter readings as text, laid out like ``perf stat``: one line per event, scaling shown.

An unavailable event prints ``<not supported>`` (or ``<not counted>`` when it never got onto the
PMU) with its reason, never a zero; a multiplexed one prints its scaled value and the share of
the time it ran, e.g. ``(62.50%)``; one taken from /proc says so. Colour follows
``report.text.make_console`` (terminals only, NO_COLOR / FORCE_COLOR honoured); lines never wrap.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from rich.console import Console
from rich.text import Text

from aether_perf.model.counters import SOURCE_PROCFS, CounterReading, EventCount
from aether_perf.model.finding import Finding
from aether_perf.report.text import make_console

__all__ = ["format_event", "render_findings", "render_interval", "render_stat"]


def _emit(console: Console, line: str = "", style: str = "") -> None:
    console.print(Text(line, style=style), soft_wrap=True)


def _event_style(event: EventCount) -> str:
    return "yellow" if not event.available or event.scaled is None else ""


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
    notes: Sequence[str] = (),
    color: bool | None = None,
) -> None:
    """The closing table: every event, the notes behind [procfs]/[user], per-thread rows."""
    console = make_console(file, color)
    _emit(console)
    _emit(console, f" Performance counter stats for '{' '.join(command)}':", "bold")
    _emit(console)
    for event in reading.events.values():
        _emit(console, format_event(event, reading), _event_style(event))
    _emit(console)
    _emit(console, f"{reading.duration_ns / 1e9:>18.9f} seconds time elapsed")
    lines = sorted({f"{e.name}: {e.note}" for e in reading.events.values() if e.note})
    if reading.inherit:
        lines.insert(0, "counts include threads and child processes started by the program (inherit)")
    lines.extend(notes)
    if lines:
        _emit(console)
    for line in lines:
        _emit(console, f"  {line}", "dim")
    if reading.threads:
        names = thread_names or {}
        _emit(console)
        _emit(console, " Per thread:", "bold")
        header = "".join(f"{name:>20}" for name in reading.events)
        _emit(console, f"{'tid':>10}  {'name':<20}{header}")
        for tid, part in sorted(reading.threads.items()):
            cells = "".join(f"{_cell(part.events[name]):>20}" for name in reading.events)
            _emit(console, f"{tid:>10}  {names.get(tid, '')[:20]:<20}{cells}")
    file.flush()


def _cell(event: EventCount) -> str:
    value = event.scaled
    if value is None:
        return "-"
    if event.name in ("task-clock", "cpu-clock"):
        return f"{value / 1e6:,.2f} ms"
    return f"{value:,.0f}"


def render_interval(
    delta: CounterReading, elapsed_s: float, file: TextIO, *, header: bool = False, color: bool | None = None
) -> None:
    """One block per interval (perf stat -I): time since start, then each event's delta."""
    console = make_console(file, color)
    if header:
        _emit(console, f"#{'time':>13} {'counts':>22} {'unit events':<24}", "bold")
    for event in delta.events.values():
        if not event.available:
            continue  # the closing table says why, once
        _emit(console, f"{elapsed_s:14.6f} {format_event(event, delta)}", _event_style(event))
    file.flush()


def render_findings(
    findings: Sequence[Finding], file: TextIO, *, lang: str = "en", color: bool | None = None
) -> None:
    """The bottleneck report: fired rules with their suggestions, then what was not evaluated."""
    console = make_console(file, color)
    zh = lang == "zh"
    _emit(console)
    _emit(console, " 瓶颈分析:" if zh else " Bottleneck analysis:", "bold")
    fired = [f for f in findings if f.evaluated and f.severity != "info"]
    other = [f for f in findings if f.evaluated and f.severity == "info"]
    skipped = [f for f in findings if not f.evaluated]
    if not fired:
        nothing = (
            "未发现瓶颈（在可评估的规则中）"
            if zh
            else "no bottleneck found by the rules that could be evaluated"
        )
        _emit(console, f"  {nothing}", "green")
    for finding in fired:
        _emit(console, f"  [{finding.severity}] {finding.title}: {finding.message}", "bold red")
        for suggestion in finding.suggestions:
            _emit(console, f"      - {suggestion}")
    for finding in other:
        _emit(console, f"  [info] {finding.title}: {finding.message}")
    for finding in skipped:
        label = "未评估" if zh else "not evaluated"
        _emit(
            console, f"  [{label}] {finding.title}: {finding.message.removeprefix('not evaluated: ')}", "dim"
        )
    file.flush()
