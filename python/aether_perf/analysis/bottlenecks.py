"""Micro-architectural bottleneck rules over a :class:`CounterReading` (the chapter's 微架构级分析).

The chapter's three rules, with its thresholds as defaults: IPC < 1 (low instruction-level
parallelism), cache misses per instruction > 5%, branch mispredictions per instruction > 2%.
Where the events exist, top-down's level-1 proxies are added (front-end / back-end stalled
cycles per cycle, perf stat's warning levels), plus the chapter's scheduling rule (more than 1000
context switches per second) and a note when counts were multiplexed (scaled estimates).

A rule whose inputs are missing yields a finding with ``evaluated=False`` naming the missing
counters and why they are missing: "no finding" must never be mistaken for "no problem".
Apply it to a delta (``current - previous``) for the chapter's interval analysis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aether_perf.errors import InvalidArgument
from aether_perf.model.counters import CounterReading
from aether_perf.model.finding import Finding

__all__ = ["LANGS", "Thresholds", "bottlenecks"]

Lang = Literal["en", "zh"]
LANGS: tuple[Lang, ...] = ("en", "zh")


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Every threshold of the rules; fractions are per instruction or per cycle (0.05 = 5%)."""

    min_ipc: float = 1.0
    max_cache_miss_rate: float = 0.05
    max_branch_mispredict_rate: float = 0.02
    #: perf stat colours stalled-cycles-frontend from 30% and backend from 50% (its "high" levels).
    max_frontend_stall_ratio: float = 0.30
    max_backend_stall_ratio: float = 0.50
    max_context_switches_per_s: float = 1000.0
    #: below this fraction of enabled time on the PMU, counts are flagged as rough estimates.
    min_coverage: float = 0.9


#: (English, Chinese) suggestion pairs; the Chinese are the chapter's own words.
_SUGGESTIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "cpu.low-ipc": (
        (
            "Consider loop unrolling to increase instruction-level parallelism",
            "考虑循环展开以增加指令级并行性",
        ),
        ("Check data-dependency chains and try to break them", "检查数据依赖链，尝试打破依赖"),
    ),
    "cpu.cache-misses": (
        ("Improve data access patterns for better cache locality", "优化数据访问模式以提高缓存局部性"),
        ("Consider prefetching", "考虑使用预取指令"),
        ("Change the data-structure layout to reduce cache conflicts", "调整数据结构布局以减少缓存冲突"),
    ),
    "cpu.branch-mispredicts": (
        ("Move predictable branches off the hot path", "将可预测的分支移到热路径之外"),
        ("Use branch-free programming techniques", "使用无分支编程技术"),
        ("Reorder conditional tests", "重新组织条件判断顺序"),
    ),
    "cpu.frontend-bound": (
        (
            "Shrink the hot code path (fewer distinct functions and call sites per loop)",
            "缩小热点代码路径，减少指令缓存压力",
        ),
        ("Reduce indirect calls and jumps in the hot loop", "减少热循环中的间接调用和跳转"),
    ),
    "cpu.backend-bound": (
        (
            "Look for memory stalls: pack hot data together, iterate sequentially",
            "检查内存停顿：紧凑存放热数据，顺序访问",
        ),
        ("Break long dependency chains so more instructions can run at once", "打破长依赖链，提高并行执行"),
    ),
    "sched.context-switches": (
        ("Reduce blocking calls and lock hand-offs; batch small I/O", "减少阻塞调用和锁交接；合并小的I/O"),
        ("Use fewer threads than there are busy CPUs", "线程数不要超过繁忙CPU数"),
    ),
}

_TITLES: dict[str, tuple[str, str]] = {
    "cpu.low-ipc": ("Low instruction-level parallelism", "指令级并行性低"),
    "cpu.cache-misses": ("Cache-miss bottleneck", "缓存未命中瓶颈"),
    "cpu.branch-mispredicts": ("Poor branch prediction", "分支预测不佳"),
    "cpu.frontend-bound": ("Front-end bound (instruction supply stalls)", "前端受限（取指停顿）"),
    "cpu.backend-bound": ("Back-end bound (execution/memory stalls)", "后端受限（执行/内存停顿）"),
    "sched.context-switches": ("Frequent context switches", "上下文切换频繁"),
    "counters.multiplexed": ("Counters were multiplexed", "计数器被复用"),
}


def _suggest(rule: str, lang: Lang) -> tuple[str, ...]:
    index = 1 if lang == "zh" else 0
    return tuple(pair[index] for pair in _SUGGESTIONS.get(rule, ()))


def _title(rule: str, lang: Lang) -> str:
    return _TITLES[rule][1 if lang == "zh" else 0]


def _why_missing(reading: CounterReading, names: list[str]) -> str:
    parts = []
    for name in names:
        event = reading.events.get(name)
        if event is None:
            parts.append(f"{name} (not measured)")
        elif not event.available:
            parts.append(f"{name} ({event.reason or 'unavailable'})")
        else:
            parts.append(f"{name} (never scheduled on the PMU)")
    return "; ".join(parts)


def _not_evaluated(rule: str, reading: CounterReading, names: list[str], lang: Lang) -> Finding:
    return Finding(
        rule=rule,
        title=_title(rule, lang),
        severity="info",
        message=f"not evaluated: missing counters {', '.join(names)}: {_why_missing(reading, names)}",
        evidence={"missing": names},
        evaluated=False,
    )


def bottlenecks(
    reading: CounterReading,
    thresholds: Thresholds | None = None,
    *,
    lang: Lang = "en",
    include_passed: bool = False,
) -> list[Finding]:
    """Apply the rules to ``reading``; return the findings (warnings for rules that fired,
    ``evaluated=False`` ones for rules lacking counters, and with ``include_passed`` an ``info``
    finding for each rule that was checked and did not fire)."""
    if lang not in LANGS:
        raise InvalidArgument(f"lang must be one of {', '.join(LANGS)}, not {lang!r}")
    limits = thresholds or Thresholds()
    findings: list[Finding] = []

    def rule(
        name: str,
        needs: tuple[str, ...],
        measured: float | None,
        threshold: float,
        fires: bool,
        message: str,
        unit: str,
        evidence: dict[str, float | None],
    ) -> None:
        missing = reading.missing(*needs)
        if missing or measured is None:
            findings.append(_not_evaluated(name, reading, missing or list(needs), lang))
            return
        if not fires and not include_passed:
            return
        findings.append(
            Finding(
                rule=name,
                title=_title(name, lang),
                severity="warning" if fires else "info",
                message=message if fires else f"within threshold: {message}",
                measured=measured,
                threshold=threshold,
                unit=unit,
                suggestions=_suggest(name, lang) if fires else (),
                evidence={**evidence, **{need: reading.value(need) for need in needs}},
            )
        )

    ipc = reading.ipc
    rule(
        "cpu.low-ipc",
        ("instructions", "cycles"),
        ipc,
        limits.min_ipc,
        ipc is not None and ipc < limits.min_ipc,
        f"IPC {ipc:.2f} (threshold {limits.min_ipc:g}); CPI {1 / ipc:.2f}" if ipc else f"IPC {ipc}",
        "instructions/cycle",
        {"cpi": reading.cpi},
    )
    rate = reading.cache_miss_rate
    rule(
        "cpu.cache-misses",
        ("cache-misses", "instructions"),
        rate,
        limits.max_cache_miss_rate,
        rate is not None and rate > limits.max_cache_miss_rate,
        f"{_pct(rate)} cache misses per instruction (threshold {_pct(limits.max_cache_miss_rate)}), "
        f"MPKI {_num(reading.mpki)}",
        "misses/instruction",
        {"mpki": reading.mpki, "cache_miss_ratio": reading.cache_miss_ratio},
    )
    rate = reading.branch_mispredict_rate
    rule(
        "cpu.branch-mispredicts",
        ("branch-misses", "instructions"),
        rate,
        limits.max_branch_mispredict_rate,
        rate is not None and rate > limits.max_branch_mispredict_rate,
        f"{_pct(rate)} branch mispredictions per instruction "
        f"(threshold {_pct(limits.max_branch_mispredict_rate)}), branch MPKI {_num(reading.branch_mpki)}",
        "mispredicts/instruction",
        {"branch_mpki": reading.branch_mpki, "branch_miss_ratio": reading.branch_miss_ratio},
    )
    # Top-down level 1, as far as generic events allow: only where the stall events exist.
    stall = reading.frontend_stall_ratio
    rule(
        "cpu.frontend-bound",
        ("stalled-cycles-frontend", "cycles"),
        stall,
        limits.max_frontend_stall_ratio,
        stall is not None and stall > limits.max_frontend_stall_ratio,
        f"{_pct(stall)} of cycles stalled in the front end "
        f"(threshold {_pct(limits.max_frontend_stall_ratio)})",
        "stalled cycles/cycle",
        {},
    )
    stall = reading.backend_stall_ratio
    rule(
        "cpu.backend-bound",
        ("stalled-cycles-backend", "cycles"),
        stall,
        limits.max_backend_stall_ratio,
        stall is not None and stall > limits.max_backend_stall_ratio,
        f"{_pct(stall)} of cycles stalled in the back end (threshold {_pct(limits.max_backend_stall_ratio)})",
        "stalled cycles/cycle",
        {"mpki": reading.mpki},
    )
    per_s = reading.per_second("context-switches")
    rule(
        "sched.context-switches",
        ("context-switches",),
        per_s,
        limits.max_context_switches_per_s,
        per_s is not None and per_s > limits.max_context_switches_per_s,
        f"{_num(per_s)} context switches/s (threshold {limits.max_context_switches_per_s:g}/s)",
        "switches/s",
        {"duration_s": reading.duration_ns / 1e9},
    )
    rough = {
        name: event.coverage
        for name, event in reading.events.items()
        if event.coverage is not None and event.coverage < limits.min_coverage
    }
    if rough:
        worst = min(value for value in rough.values() if value is not None)
        findings.append(
            Finding(
                rule="counters.multiplexed",
                title=_title("counters.multiplexed", lang),
                severity="info",
                message=f"{', '.join(rough)} ran on the PMU only part of the time (lowest {_pct(worst)}); "
                "their values are scaled estimates",
                measured=worst,
                threshold=limits.min_coverage,
                unit="running/enabled",
                evidence={"coverage": rough},
            )
        )
    return findings


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.2f}%"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.2f}"
