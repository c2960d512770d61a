"""The I/O report: per file and per connection byte counts and latencies, by Python stack.

All times are nanoseconds. A *target* is one file (by path) or one peer (``tcp 127.0.0.1:8080``);
several connections to one peer merge into one target, as several opens of one file do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aether_perf.model.finding import Location

__all__ = ["IOReport", "OpStats", "StackStats", "TargetStats"]


@dataclass
class OpStats:
    """Calls of one kind (read, write, send, recv, fsync, connect, response): count, bytes, time."""

    count: int = 0
    bytes: int = 0
    total_ns: int = 0
    max_ns: int = 0

    def add(self, nbytes: int, ns: int) -> None:
        self.count += 1
        self.bytes += nbytes
        self.total_ns += ns
        if ns > self.max_ns:
            self.max_ns = ns

    @property
    def avg_ns(self) -> float:
        return self.total_ns / self.count if self.count else 0.0

    @property
    def throughput(self) -> float:
        """Bytes per second of time spent in these calls (the chapter's measure)."""
        return self.bytes / (self.total_ns / 1e9) if self.total_ns else 0.0

    def to_dict(self) -> dict[str, int]:
        return {"count": self.count, "bytes": self.bytes, "total_ns": self.total_ns, "max_ns": self.max_ns}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OpStats:
        return cls(int(data["count"]), int(data["bytes"]), int(data["total_ns"]), int(data["max_ns"]))


def _loc_list(stack: tuple[Location, ...]) -> list[list[Any]]:
    return [[loc.file, loc.line, loc.function] for loc in stack]


def _loc_tuple(raw: Any) -> tuple[Location, ...]:
    return tuple(Location(str(f), int(line), str(fn)) for f, line, fn in raw or ())


@dataclass
class StackStats:
    """The calls of one op kind on one target made from one Python stack (innermost first)."""

    op: str
    stack: tuple[Location, ...]
    stats: OpStats = field(default_factory=OpStats)

    def to_dict(self) -> dict[str, Any]:
        return {"op": self.op, "stack": _loc_list(self.stack), **self.stats.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StackStats:
        return cls(str(data["op"]), _loc_tuple(data.get("stack")), OpStats.from_dict(data))


@dataclass
class TargetStats:
    """One file or one peer: its calls by kind, its top stacks and (TCP) its TCP_INFO summary.

    ``kind`` is ``file``, ``tcp``, ``udp``, ``unix`` or ``socket``; ``location`` is where it was
    first opened or connected (the first frame outside the I/O layers); ``tcp`` holds the latest
    TCP_INFO fields summed or maxed over its connections (``rtt_us`` max, ``total_retrans`` and
    ``segs_out`` summed, ``connections``).
    """

    kind: str
    name: str
    location: Location | None = None
    ops: dict[str, OpStats] = field(default_factory=dict)
    stacks: list[StackStats] = field(default_factory=list)
    tcp: dict[str, int] = field(default_factory=dict)

    def op(self, name: str) -> OpStats:
        return self.ops.get(name) or OpStats()

    def to_dict(self) -> dict[str, Any]:
        loc = self.location
        return {
            "kind": self.kind,
            "name": self.name,
            "location": [loc.file, loc.line, loc.function] if loc else None,
            "ops": {k: v.to_dict() for k, v in self.ops.items()},
            "stacks": [s.to_dict() for s in self.stacks],
            "tcp": dict(self.tcp),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TargetStats:
        loc = data.get("location")
        return cls(
            str(data["kind"]),
            str(data["name"]),
            Location(str(loc[0]), int(loc[1]), str(loc[2])) if loc else None,
            {str(k): OpStats.from_dict(v) for k, v in data.get("ops", {}).items()},
            [StackStats.from_dict(s) for s in data.get("stacks", ())],
            {str(k): int(v) for k, v in data.get("tcp", {}).items()},
        )


@dataclass
class IOReport:
    """What :func:`aether_perf.io.track` saw over ``duration`` seconds.

    ``process_io`` is the /proc/self/io delta, ``tcp_snmp`` the system's ``Tcp:`` counters delta
    (/proc/net/snmp, the whole network namespace), ``net_dev`` the per-interface delta
    (/proc/net/dev), ``opens`` and ``connects`` what the audit hooks saw (path or peer -> count,
    including opens that bypass ``open()``, such as ``os.open``).
    """

    duration: float
    targets: list[TargetStats] = field(default_factory=list)
    process_io: dict[str, int] = field(default_factory=dict)
    tcp_snmp: dict[str, int] = field(default_factory=dict)
    net_dev: dict[str, dict[str, int]] = field(default_factory=dict)
    opens: dict[str, int] = field(default_factory=dict)
    connects: dict[str, int] = field(default_factory=dict)

    def target(self, name: str) -> TargetStats:
        for t in self.targets:
            if t.name == name:
                return t
        raise KeyError(name)

    @property
    def files(self) -> list[TargetStats]:
        return [t for t in self.targets if t.kind == "file"]

    @property
    def connections(self) -> list[TargetStats]:
        return [t for t in self.targets if t.kind != "file"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "duration": self.duration,
            "targets": [t.to_dict() for t in self.targets],
            "process_io": dict(self.process_io),
            "tcp_snmp": dict(self.tcp_snmp),
            "net_dev": {k: dict(v) for k, v in self.net_dev.items()},
            "opens": dict(self.opens),
            "connects": dict(self.connects),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IOReport:
        return cls(
            float(data["duration"]),
            [TargetStats.from_dict(t) for t in data.get("targets", ())],
            {str(k): int(v) for k, v in data.get("process_io", {}).items()},
            {str(k): int(v) for k, v in data.get("tcp_snmp", {}).items()},
            {str(k): {str(a): int(b) for a, b in v.items()} for k, v in data.get("net_dev", {}).items()},
            {str(k): int(v) for k, v in data.get("opens", {}).items()},
            {str(k): int(v) for k, v in data.get("connects", {}).items()},
        )
