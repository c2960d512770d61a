"""Lock contention: instrumented locks, track(), per-lock statistics and the contention rule.

    from aether_perf import locks

    with locks.track() as tracker:
        run_threads()
    for finding in locks.findings(tracker.stats()):
        print(finding.message)

Each lock is named by its creation site (``file:line``) unless given a name; statistics merge the
locks of one name. :func:`stats` reads the default registry (instrumented locks made outside
``track()`` without an explicit registry).
"""

from aether_perf.locks.instrumented import (
    InstrumentedAsyncioLock,
    InstrumentedBoundedSemaphore,
    InstrumentedCondition,
    InstrumentedLock,
    InstrumentedRLock,
    InstrumentedSemaphore,
)
from aether_perf.locks.rules import DEFAULT_AVG_WAIT, RULE_CONTENDED, findings
from aether_perf.locks.stats import DEFAULT_REGISTRY, LockRegistry, LockStats, WaitRecord
from aether_perf.locks.track import LockTracker, track

__all__ = [
    "DEFAULT_AVG_WAIT",
    "RULE_CONTENDED",
    "InstrumentedAsyncioLock",
    "InstrumentedBoundedSemaphore",
    "InstrumentedCondition",
    "InstrumentedLock",
    "InstrumentedRLock",
    "InstrumentedSemaphore",
    "LockRegistry",
    "LockStats",
    "LockTracker",
    "WaitRecord",
    "findings",
    "stats",
    "track",
]


def stats() -> list[LockStats]:
    """Statistics of the instrumented locks in the default registry, most contended first."""
    return DEFAULT_REGISTRY.stats()
