"""The lock, thread-scheduling, I/O and GIL tables of a profile, for the text and HTML reports.

Each table is ``{"title", "columns": [...], "rows": [[cell, ...], ...]}`` with cells already
formatted (strings, or integers for counts), at most ``MAX_ROWS`` rows.
"""

from __future__ import annotations

from typing import Any

from aether_perf.analysis import concurrency, gil
from aether_perf.errors import InvalidArgument
from aether_perf.model.profile import Profile

__all__ = ["MAX_ROWS", "concurrency_tables"]

MAX_ROWS = 50


def _ms(ns: float) -> str:
    return f"{ns / 1e6:.3g}"


def _table(title: str, columns: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    return {"title": title, "columns": columns, "rows": rows[:MAX_ROWS]}


def concurrency_tables(profile: Profile) -> list[dict[str, Any]]:
    """The lock, thread, I/O and GIL tables of ``profile`` (empty when it holds none)."""
    data = concurrency.load(profile)
    tables: list[dict[str, Any]] = []
    if data.locks is not None:
        tables.append(
            _table(
                "Locks (most waited first)",
                ["lock", "kind", "acquisitions", "contended", "avg wait ms", "max wait ms", "avg hold ms"],
                [
                    [
                        s.name,
                        s.kind,
                        s.acquisitions,
                        s.contended,
                        _ms(s.avg_wait_ns),
                        _ms(s.wait_max_ns),
                        _ms(s.avg_hold_ns),
                    ]
                    for s in data.locks
                ],
            )
        )
    if data.sched is not None:
        tables.append(
            _table(
                f"Thread scheduling over {data.sched.duration:.3g} s "
                f"({data.sched.switch_rate:,.0f} context switches/s)",
                ["thread", "tid", "CPU ms", "voluntary", "involuntary", "migrations", "run-queue wait ms"],
                [
                    [
                        t.name,
                        str(t.tid),
                        _ms(t.cpu_ns),
                        t.voluntary,
                        t.involuntary,
                        t.migrations,
                        _ms(t.run_delay_ns),
                    ]
                    for t in sorted(data.sched.threads, key=lambda t: -t.cpu_ns)
                ],
            )
        )
    if data.io is not None:
        rows = []
        for t in data.io.targets:
            reads = t.op("read") if t.kind == "file" else t.op("recv")
            writes = t.op("write") if t.kind == "file" else t.op("send")
            ops = [op for name, op in t.ops.items() if name in ("read", "write", "send", "recv", "fsync")]
            count = sum(op.count for op in ops)
            avg = sum(op.total_ns for op in ops) / count if count else 0.0
            response = t.ops.get("response")
            rows.append(
                [
                    t.kind,
                    t.name,
                    reads.count,
                    reads.bytes,
                    writes.count,
                    writes.bytes,
                    _ms(avg),
                    _ms(response.avg_ns) if response else "",
                    f"{t.tcp['rtt_us'] / 1000:.3g}" if "rtt_us" in t.tcp else "",
                ]
            )
        tables.append(
            _table(
                f"I/O by file and peer over {data.io.duration:.3g} s",
                [
                    "kind",
                    "file or peer",
                    "reads",
                    "bytes read",
                    "writes",
                    "bytes written",
                    "avg call ms",
                    "avg response ms",
                    "TCP rtt ms",
                ],
                rows,
            )
        )
    if profile.meta.mode == "wall" and len(profile):
        try:
            threads = gil.gil_contention(profile)
        except InvalidArgument:
            threads = []
        if threads:
            tables.append(
                _table(
                    "GIL by thread (share of wall time)",
                    [
                        "thread",
                        "tid",
                        "holds %",
                        "waits %",
                        "blocked on GIL %",
                        "on CPU without it %",
                        "blocked elsewhere %",
                    ],
                    [
                        [
                            t.name,
                            str(t.tid),
                            f"{100 * t.hold_share:.1f}",
                            f"{100 * t.wait_share:.1f}",
                            f"{100 * t.blocked_on_gil_ns / t.total_ns:.1f}" if t.total_ns else "0",
                            f"{100 * t.running_unlocked_ns / t.total_ns:.1f}" if t.total_ns else "0",
                            f"{100 * t.blocked_other_ns / t.total_ns:.1f}" if t.total_ns else "0",
                        ]
                        for t in threads
                    ],
                )
            )
    return tables
