"""The scheduling rules (the chapter's thresholds as defaults), over a :class:`SchedReport`.

- ``sched.context-switches``: more than 1000 context switches per second, process-wide;
- ``sched.migrations``: a thread moved between CPUs more than 10 times;
- ``sched.load-imbalance``: in a pool of threads (threads whose names differ only in a trailing
  number, such as ``ThreadPoolExecutor-0_0`` .. ``_3`` or ``worker-1`` .. ``worker-8``), the least
  busy thread used over 30% less CPU than the busiest: ``(max - min) / max`` of their CPU time.
  Pools whose busiest thread used under ``min_pool_cpu`` seconds are not judged (too little to
  tell).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from aether_perf.errors import InvalidArgument
from aether_perf.model.finding import Finding
from aether_perf.sched.monitor import SchedReport, ThreadSched

__all__ = [
    "RULE_IMBALANCE",
    "RULE_MIGRATIONS",
    "RULE_SWITCHES",
    "findings",
    "load_imbalance",
    "pools",
]

RULE_SWITCHES = "sched.context-switches"
RULE_MIGRATIONS = "sched.migrations"
RULE_IMBALANCE = "sched.load-imbalance"

_POOL_SUFFIX = re.compile(r"[-_ ]?\d+(?: \(.*\))?$")


def pool_name(thread_name: str) -> str | None:
    """The pool a thread name belongs to (the name without its trailing number), else None."""
    if not _POOL_SUFFIX.search(thread_name):
        return None
    return _POOL_SUFFIX.sub("", thread_name) or None


def pools(threads: Iterable[ThreadSched]) -> dict[str, list[ThreadSched]]:
    """Threads grouped by pool name; only groups of two or more threads."""
    groups: dict[str, list[ThreadSched]] = {}
    for t in threads:
        name = pool_name(t.name)
        if name is not None:
            groups.setdefault(name, []).append(t)
    return {name: group for name, group in groups.items() if len(group) >= 2}


def load_imbalance(cpu_ns: Iterable[int]) -> float:
    """``(max - min) / max`` of the values; 0 for none or all zero."""
    values = list(cpu_ns)
    if not values or max(values) <= 0:
        return 0.0
    return (max(values) - min(values)) / max(values)


def _check(name: str, value: float, low: float = 0.0) -> float:
    value = float(value)
    if not value >= low or value != value or value == float("inf"):
        raise InvalidArgument(f"{name} must be a finite number >= {low:g}, got {value!r}")
    return value


def findings(
    report: SchedReport,
    *,
    max_switch_rate: float = 1000.0,
    max_migrations: int = 10,
    max_imbalance: float = 0.3,
    min_pool_cpu: float = 0.05,
) -> list[Finding]:
    """The scheduling findings of ``report``, each with the measured value and a suggestion."""
    _check("max_switch_rate", max_switch_rate)
    _check("max_migrations", max_migrations)
    if not 0 <= _check("max_imbalance", max_imbalance) <= 1:
        raise InvalidArgument(f"max_imbalance must be between 0 and 1, got {max_imbalance!r}")
    _check("min_pool_cpu", min_pool_cpu)
    out: list[Finding] = []
    rate = report.switch_rate
    if rate > max_switch_rate:
        busiest = sorted(report.threads, key=lambda t: -t.switches)[:5]
        out.append(
            Finding(
                rule=RULE_SWITCHES,
                title="High context-switch rate",
                severity="warning",
                message=f"{rate:,.0f} context switches per second over {report.duration:.3g} s "
                f"(threshold {max_switch_rate:,.0f}/s)",
                measured=rate,
                threshold=float(max_switch_rate),
                unit="switches/s",
                suggestions=(
                    "fewer threads than runnable work items: size pools to the cores for CPU work",
                    "batch small hand-offs between threads (queue whole chunks, not single items)",
                    "many involuntary switches mean CPU oversubscription; many voluntary ones mean "
                    "threads blocking on locks, I/O or sleeps",
                ),
                evidence={
                    "switches": report.switches,
                    "voluntary": sum(t.voluntary for t in report.threads),
                    "involuntary": sum(t.involuntary for t in report.threads),
                    "duration_s": report.duration,
                    "top_threads": {t.name: t.switches for t in busiest},
                },
            )
        )
    for t in report.threads:
        if t.migrations > max_migrations:
            out.append(
                Finding(
                    rule=RULE_MIGRATIONS,
                    title=f"Thread {t.name} migrated between CPUs {t.migrations} times",
                    severity="info",
                    message=f"thread {t.name} (tid {t.tid}) moved between CPUs {t.migrations} times "
                    f"(threshold {max_migrations})" + ("" if t.migrations_exact else " (polled: at least)"),
                    measured=float(t.migrations),
                    threshold=float(max_migrations),
                    unit="migrations",
                    suggestions=(
                        "pin latency-sensitive threads or the process (os.sched_setaffinity) to keep "
                        "caches warm",
                        "reduce the number of runnable threads so the scheduler has less to balance",
                    ),
                    evidence={"tid": t.tid, "cpu_ms": t.cpu_ns / 1e6, "exact": t.migrations_exact},
                )
            )
    for name, group in sorted(pools(report.threads).items()):
        cpu = [t.cpu_ns for t in group]
        if max(cpu) < min_pool_cpu * 1e9:
            continue
        imbalance = load_imbalance(cpu)
        if imbalance > max_imbalance:
            out.append(
                Finding(
                    rule=RULE_IMBALANCE,
                    title=f"Load imbalance in pool {name}",
                    severity="warning",
                    message=f"pool {name}: the least busy of {len(group)} threads used "
                    f"{imbalance:.0%} less CPU than the busiest (threshold {max_imbalance:.0%})",
                    measured=imbalance,
                    threshold=float(max_imbalance),
                    unit="ratio",
                    suggestions=(
                        "split work into more, smaller tasks so idle workers can take some",
                        "check for one long task or a hot key sending work to one thread",
                    ),
                    evidence={"pool": name, "cpu_ms": {t.name: t.cpu_ns / 1e6 for t in group}},
                )
            )
    return out
