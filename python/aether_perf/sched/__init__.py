"""Thread scheduling: per-thread counters from /proc/self/task/*, rates over time, the rules.

from aether_perf import sched

with sched.track("50ms") as monitor:
    run_threads()
for finding in sched.findings(monitor.report):
    print(finding.message)
"""

from aether_perf.sched.monitor import SchedMonitor, SchedReport, ThreadSched, TimelinePoint, track
from aether_perf.sched.procfs import ThreadCounters, read_task, read_tasks
from aether_perf.sched.rules import (
    RULE_IMBALANCE,
    RULE_MIGRATIONS,
    RULE_SWITCHES,
    findings,
    load_imbalance,
    pools,
)

__all__ = [
    "RULE_IMBALANCE",
    "RULE_MIGRATIONS",
    "RULE_SWITCHES",
    "SchedMonitor",
    "SchedReport",
    "ThreadCounters",
    "ThreadSched",
    "TimelinePoint",
    "findings",
    "load_imbalance",
    "pools",
    "read_task",
    "read_tasks",
    "track",
]
