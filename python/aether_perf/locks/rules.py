"""The lock-contention rule: a lock whose average wait per acquisition exceeds a threshold.

The chapter's default is 1 ms (``LockStats.avg_wait_ns``: total wait over all acquisitions).
A lock never waited for produces no finding, however often it was taken.
"""

from __future__ import annotations

from collections.abc import Iterable

from aether_perf.locks.stats import LockStats
from aether_perf.model.finding import Finding
from aether_perf.units import parse_duration

__all__ = ["DEFAULT_AVG_WAIT", "RULE_CONTENDED", "findings"]

RULE_CONTENDED = "locks.contended"
#: Average wait per acquisition above which a lock is contended (seconds).
DEFAULT_AVG_WAIT = 0.001


def findings(stats: Iterable[LockStats], *, avg_wait: float | str = DEFAULT_AVG_WAIT) -> list[Finding]:
    """One ``locks.contended`` Finding per lock over ``avg_wait`` (seconds or "1ms"), worst first."""
    threshold_ms = parse_duration(avg_wait, name="avg_wait") * 1e3
    out: list[Finding] = []
    for s in stats:
        avg_ms = s.avg_wait_ns / 1e6
        if s.contended == 0 or avg_ms <= threshold_ms:
            continue
        worst = s.longest_waits[0] if s.longest_waits else None
        out.append(
            Finding(
                rule=RULE_CONTENDED,
                title=f"Contended {s.kind}: {s.name}",
                severity="error" if avg_ms > 10 * threshold_ms else "warning",
                message=(
                    f"{s.kind} {s.name}: average wait {avg_ms:.3g} ms per acquisition over "
                    f"{s.acquisitions} acquisitions ({s.contended} waited, max {s.wait_max_ns / 1e6:.3g} ms; "
                    f"average hold {s.avg_hold_ns / 1e6:.3g} ms)"
                ),
                measured=avg_ms,
                threshold=threshold_ms,
                unit="ms",
                suggestions=(
                    "hold the lock for less time: move work that does not need it outside the with-block",
                    "split the lock (one per independent piece of state) or use a lock-free structure "
                    "such as queue.Queue",
                    "for read-mostly data, publish immutable snapshots instead of locking every read",
                ),
                location=s.site,
                evidence={
                    "lock": s.name,
                    "kind": s.kind,
                    "locks": s.locks,
                    "acquisitions": s.acquisitions,
                    "contended": s.contended,
                    "wait_total_ms": s.wait_total_ns / 1e6,
                    "wait_max_ms": s.wait_max_ns / 1e6,
                    "hold_avg_ms": s.avg_hold_ns / 1e6,
                    "hold_max_ms": s.hold_max_ns / 1e6,
                    "longest_wait_stack": [f"{loc.file}:{loc.line} {loc.function}" for loc in worst.stack]
                    if worst
                    else [],
                },
            )
        )
    out.sort(key=lambda f: -(f.measured or 0.0))
    return out
