"""Disk and network I/O: per-call bytes and latencies by file, peer and Python stack; the rules.

    from aether_perf import io as aio

    with aio.track() as tracker:
        run_program()
    for finding in aio.findings(tracker.report):
        print(finding.message)

Beside the per-call numbers the report holds /proc/self/io, /proc/net/snmp and /proc/net/dev
deltas and TCP_INFO (rtt, retransmits) of the program's own TCP connections.
"""

from aether_perf.io.counters import read_net_dev, read_process_io, read_tcp_snmp, tcp_info
from aether_perf.io.rules import (
    RULE_BANDWIDTH,
    RULE_LATENCY,
    RULE_LOSS,
    RULE_SLOW_OPS,
    RULE_THROUGHPUT,
    findings,
)
from aether_perf.io.stats import IOReport, OpStats, StackStats, TargetStats
from aether_perf.io.tracker import IOTracker, TrackedFileIO, track

__all__ = [
    "RULE_BANDWIDTH",
    "RULE_LATENCY",
    "RULE_LOSS",
    "RULE_SLOW_OPS",
    "RULE_THROUGHPUT",
    "IOReport",
    "IOTracker",
    "OpStats",
    "StackStats",
    "TargetStats",
    "TrackedFileIO",
    "findings",
    "read_net_dev",
    "read_process_io",
    "read_tcp_snmp",
    "tcp_info",
    "track",
]
