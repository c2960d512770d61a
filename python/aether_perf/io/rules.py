"""The I/O rules (the chapter's thresholds as defaults), over an :class:`IOReport`.

- ``io.low-throughput``: a file's read or write throughput (bytes over the time spent in those
  calls) under 50 MB/s, judged only past ``min_bytes`` (1 MiB) so a few small reads of a tiny
  file, whose time is all call overhead, are not called slow;
- ``io.slow-ops``: a file's average read, write or fsync latency over 10 ms;
- ``net.packet-loss``: TCP retransmitted segments over 1% of segments sent, per peer (TCP_INFO of
  the program's own sockets) and system-wide (/proc/net/snmp, judged past ``min_segments``);
- ``net.latency``: a peer's average response time (end of a send to the end of the recv that
  follows) or its TCP round-trip time over 100 ms;
- ``net.bandwidth``: bytes per second over 80% of the link speed: per interface (/proc/net/dev;
  the speed from sysfs, or ``link_speed`` in bytes per second, which also judges loopback and the
  program's own socket traffic). An interface with no known speed is not judged.
"""

from __future__ import annotations

from collections.abc import Mapping

from aether_perf.errors import InvalidArgument
from aether_perf.io.counters import link_speed as sysfs_link_speed
from aether_perf.io.stats import IOReport, TargetStats
from aether_perf.model.finding import Finding
from aether_perf.units import parse_duration

__all__ = [
    "RULE_BANDWIDTH",
    "RULE_LATENCY",
    "RULE_LOSS",
    "RULE_SLOW_OPS",
    "RULE_THROUGHPUT",
    "findings",
]

RULE_THROUGHPUT = "io.low-throughput"
RULE_SLOW_OPS = "io.slow-ops"
RULE_LOSS = "net.packet-loss"
RULE_LATENCY = "net.latency"
RULE_BANDWIDTH = "net.bandwidth"

MB = 1e6


def _number(name: str, value: float, low: float = 0.0) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidArgument(f"{name} must be a number, got {value!r}") from None
    if not low <= number < float("inf"):
        raise InvalidArgument(f"{name} must be a finite number >= {low:g}, got {value!r}")
    return number


def _stack_text(target: TargetStats, op: str) -> list[str]:
    for s in target.stacks:
        if s.op == op:
            return [f"{loc.file}:{loc.line} {loc.function}" for loc in s.stack]
    return []


def findings(
    report: IOReport,
    *,
    min_throughput: float = 50 * MB,
    max_op_latency: float | str = 0.010,
    max_loss: float = 0.01,
    max_latency: float | str = 0.100,
    link_speed: float | None = None,
    max_link_use: float = 0.8,
    min_bytes: int = 1 << 20,
    min_segments: int = 1000,
) -> list[Finding]:
    """The I/O findings of ``report``; throughputs and ``link_speed`` in bytes per second."""
    min_throughput = _number("min_throughput", min_throughput)
    op_limit_ns = parse_duration(max_op_latency, name="max_op_latency") * 1e9
    max_loss = _number("max_loss", max_loss)
    latency_limit_ns = parse_duration(max_latency, name="max_latency") * 1e9
    if link_speed is not None:
        link_speed = _number("link_speed", link_speed)
        if link_speed <= 0:
            raise InvalidArgument("link_speed must be greater than zero (bytes per second)")
    max_link_use = _number("max_link_use", max_link_use)
    out: list[Finding] = []
    for target in report.files:
        for op in ("read", "write"):
            stats = target.ops.get(op)
            if stats is None or stats.bytes < min_bytes or not stats.total_ns:
                continue
            rate = stats.throughput
            if rate < min_throughput:
                out.append(
                    Finding(
                        rule=RULE_THROUGHPUT,
                        title=f"Low {op} throughput: {target.name}",
                        severity="warning",
                        message=f"{op}s of {target.name}: {rate / MB:.3g} MB/s over {stats.count} calls "
                        f"({stats.bytes / MB:.3g} MB in {stats.total_ns / 1e9:.3g} s; "
                        f"threshold {min_throughput / MB:.3g} MB/s)",
                        measured=rate / MB,
                        threshold=min_throughput / MB,
                        unit="MB/s",
                        suggestions=(
                            "use larger reads and writes (bigger buffers, fewer calls)",
                            "check the device (network file system, throttled or busy disk)",
                            "fsync less often: batch writes before each sync",
                        ),
                        location=target.location,
                        evidence={
                            "file": target.name,
                            "op": op,
                            **stats.to_dict(),
                            "stack": _stack_text(target, op),
                        },
                    )
                )
        for op in ("read", "write", "fsync"):
            stats = target.ops.get(op)
            if stats is None or not stats.count or stats.avg_ns <= op_limit_ns:
                continue
            out.append(
                Finding(
                    rule=RULE_SLOW_OPS,
                    title=f"Slow {op} calls: {target.name}",
                    severity="warning",
                    message=f"{op} on {target.name}: average {stats.avg_ns / 1e6:.3g} ms over {stats.count} "
                    f"calls (max {stats.max_ns / 1e6:.3g} ms; threshold {op_limit_ns / 1e6:.3g} ms)",
                    measured=stats.avg_ns / 1e6,
                    threshold=op_limit_ns / 1e6,
                    unit="ms",
                    suggestions=(
                        "move the I/O off the latency-critical path (a worker thread, "
                        "asyncio.to_thread) or batch it",
                        "for fsync: sync once per batch, or use a faster device for the journal",
                    ),
                    location=target.location,
                    evidence={
                        "file": target.name,
                        "op": op,
                        **stats.to_dict(),
                        "stack": _stack_text(target, op),
                    },
                )
            )
    for target in report.connections:
        tcp = target.tcp
        segs = tcp.get("segs_out", 0)
        if segs:
            loss = tcp.get("total_retrans", 0) / segs
            if loss > max_loss:
                out.append(_loss_finding(loss, max_loss, target.name, tcp, target))
        response = target.ops.get("response")
        rtt_ns = tcp.get("rtt_us", 0) * 1000
        worst = max(response.avg_ns if response else 0.0, float(rtt_ns))
        if worst > latency_limit_ns:
            measure = "response time" if response and response.avg_ns >= rtt_ns else "TCP round-trip time"
            out.append(
                Finding(
                    rule=RULE_LATENCY,
                    title=f"High latency: {target.name}",
                    severity="warning",
                    message=f"{target.name}: average {measure} {worst / 1e6:.3g} ms "
                    f"(threshold {latency_limit_ns / 1e6:.3g} ms)",
                    measured=worst / 1e6,
                    threshold=latency_limit_ns / 1e6,
                    unit="ms",
                    suggestions=(
                        "overlap requests (a connection pool, pipelining, asyncio) instead of "
                        "waiting for each response",
                        "cache responses or move the service closer; check the server's own latency",
                    ),
                    location=target.location,
                    evidence={
                        "peer": target.name,
                        "response": response.to_dict() if response else None,
                        "tcp": dict(tcp),
                        "stack": _stack_text(target, "recv"),
                    },
                )
            )
    snmp = report.tcp_snmp
    if snmp.get("OutSegs", 0) >= min_segments:
        loss = snmp.get("RetransSegs", 0) / snmp["OutSegs"]
        if loss > max_loss:
            out.append(_loss_finding(loss, max_loss, "system (/proc/net/snmp)", snmp, None))
    if report.duration > 0:
        for iface, counters in sorted(report.net_dev.items()):
            speed = link_speed
            if speed is None and iface != "lo":
                speed = sysfs_link_speed(iface)
            if speed is None:
                continue
            rate = max(counters.get("rx_bytes", 0), counters.get("tx_bytes", 0)) / report.duration
            if rate > max_link_use * speed:
                out.append(_bandwidth_finding(f"interface {iface}", rate, speed, max_link_use, counters))
        if link_speed is not None:
            sent = sum(t.op("send").bytes for t in report.connections)
            received = sum(t.op("recv").bytes for t in report.connections)
            rate = max(sent, received) / report.duration
            if rate > max_link_use * link_speed:
                evidence = {"sent": sent, "received": received, "duration_s": report.duration}
                out.append(
                    _bandwidth_finding("the program's sockets", rate, link_speed, max_link_use, evidence)
                )
    return out


def _loss_finding(
    loss: float, limit: float, where: str, counters: dict[str, int], target: TargetStats | None
) -> Finding:
    return Finding(
        rule=RULE_LOSS,
        title=f"Packet loss: {where}",
        severity="error" if loss > 5 * limit else "warning",
        message=f"{where}: {loss:.2%} of TCP segments retransmitted (threshold {limit:.2%})",
        measured=loss * 100,
        threshold=limit * 100,
        unit="%",
        suggestions=(
            "check the network path (errors and drops on the interfaces, a congested link)",
            "lower the sending rate or enable a congestion control suited to the path (bbr)",
        ),
        location=target.location if target else None,
        evidence=dict(counters),
    )


def _bandwidth_finding(
    where: str, rate: float, speed: float, limit: float, evidence: Mapping[str, object]
) -> Finding:
    return Finding(
        rule=RULE_BANDWIDTH,
        title=f"Bandwidth near the link's capacity: {where}",
        severity="warning",
        message=f"{where}: {rate / MB:.3g} MB/s is {rate / speed:.0%} of the link's {speed / MB:.3g} MB/s "
        f"(threshold {limit:.0%})",
        measured=rate / speed * 100,
        threshold=limit * 100,
        unit="%",
        suggestions=(
            "compress payloads or send less (deltas, pagination)",
            "spread the traffic over time or links, or provision a faster link",
        ),
        evidence={**evidence, "bytes_per_s": rate, "link_bytes_per_s": speed},
    )
