"""Disk and network I/O tracking against known file workloads and servers on 127.0.0.1."""

from __future__ import annotations

import builtins
import io
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from aether_perf import io as aio
from aether_perf.errors import InvalidArgument
from aether_perf.io import IOReport, OpStats, TargetStats

_real_open = io.open  # the feeder thread's writes are not part of the measurement
CHUNK = 64 * 1024
CHUNKS = 32  # 2 MiB


def test_file_workload_bytes_calls_fsync_and_stacks(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    payload = os.urandom(CHUNK)
    with aio.track() as tracker:
        with open(path, "wb", buffering=0) as f:
            for _ in range(CHUNKS):
                f.write(payload)
            os.fsync(f.fileno())
        with open(path, "rb") as f:
            while f.read(CHUNK):
                pass
        text = path.with_suffix(".txt")
        text.write_text("hello\n" * 100)
        assert text.read_text().count("hello") == 100
        fd = os.open(path, os.O_RDONLY)
        os.close(fd)
    report = tracker.report
    target = report.target(str(path))
    write, read, fsync = target.op("write"), target.op("read"), target.op("fsync")
    assert (write.count, write.bytes) == (CHUNKS, CHUNKS * CHUNK)
    assert read.bytes == CHUNKS * CHUNK
    assert fsync.count == 1 and fsync.total_ns > 0
    assert write.throughput > 0 and write.avg_ns > 0
    assert target.location is not None and target.location.file == __file__
    [top] = [s for s in target.stacks if s.op == "write"]
    assert top.stack[0].function == "test_file_workload_bytes_calls_fsync_and_stacks"
    assert top.stats.count == CHUNKS
    assert report.target(str(text)).op("write").bytes == 600
    # the audit hook saw both opens of data.bin, including os.open's
    assert report.opens[str(path)] >= 3
    assert report.process_io.get("wchar", CHUNKS * CHUNK) >= CHUNKS * CHUNK
    # the real open is back
    assert builtins.open is io.open and not isinstance(open(os.devnull, "rb").raw, aio.TrackedFileIO)


def test_known_read_latency_and_throughput_trip_the_file_rules(tmp_path: Path) -> None:
    """A FIFO whose writer sends one 64 KiB chunk every 20 ms: each read waits ~20 ms, so the
    reads' latency and throughput (64 KiB per 20 ms = 3.3 MB/s) are known."""
    fifo = tmp_path / "slow"
    os.mkfifo(fifo)
    chunks, gap = 20, 0.02

    def writer() -> None:
        with _real_open(fifo, "wb", buffering=0) as f:
            for _ in range(chunks):
                time.sleep(gap)
                f.write(b"y" * CHUNK)

    feeder = threading.Thread(target=writer)
    feeder.start()
    with aio.track() as tracker, open(fifo, "rb", buffering=0) as f:
        got = 0
        while data := f.read(CHUNK):
            got += len(data)
    feeder.join()
    assert got == chunks * CHUNK
    read = tracker.report.target(str(fifo)).op("read")
    assert read.bytes == chunks * CHUNK
    # pipe reads may split a chunk: at least one call per chunk, and the end-of-file read
    assert read.count >= chunks + 1
    assert read.total_ns == pytest.approx(chunks * gap * 1e9, rel=0.2)
    assert read.throughput == pytest.approx(CHUNK / gap, rel=0.2)
    found = {f.rule: f for f in aio.findings(tracker.report)}
    assert found["io.low-throughput"].measured == pytest.approx(CHUNK / gap / 1e6, rel=0.2)
    per_call_ms = read.total_ns / read.count / 1e6
    if per_call_ms > 10:  # split reads lower the average; the rule follows the measured value
        assert found["io.slow-ops"].measured == pytest.approx(per_call_ms)
    else:
        assert "io.slow-ops" not in found
    assert aio.findings(tracker.report, max_op_latency="1s", min_throughput=1e6) == []


def test_behaviour_is_unchanged_while_tracking(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    with aio.track():
        with open(path, "w", encoding="utf-8", newline="") as f:
            assert f.mode == "w"
            f.write("a\r\nb\n")
        with open(path, encoding="utf-8") as f:
            assert f.read() == "a\nb\n"
        with open(path, "r+b") as f:
            f.seek(1)
            f.write(b"X")
        assert path.read_bytes() == b"aX\nb\n"
        with pytest.raises(ValueError):
            open(path, "rw")
        with pytest.raises(FileNotFoundError):
            open(tmp_path / "missing")
        with pytest.raises(ValueError):
            open(path, "rb", encoding="utf-8")


class _Server:
    """A TCP echo server on 127.0.0.1 that waits ``delay`` seconds before each reply."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                if self.delay:
                    time.sleep(self.delay)
                conn.sendall(data)

    def close(self) -> None:
        self.listener.close()


@contextmanager
def _server(delay: float = 0.0) -> Iterator[_Server]:
    server = _Server(delay)
    try:
        yield server
    finally:
        server.close()


def _exchange(port: int, messages: int, size: int) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        for _ in range(messages):
            sock.sendall(b"x" * size)
            got = 0
            while got < size:
                got += len(sock.recv(65536))


def test_socket_bytes_and_per_connection_stats_against_an_echo_server() -> None:
    with _server() as server:
        # the server runs outside tracking: only the client's calls are counted
        with aio.track() as tracker:
            _exchange(server.port, messages=20, size=1000)
            _exchange(server.port, messages=5, size=2000)
    report = tracker.report
    conn = report.target(f"tcp 127.0.0.1:{server.port}")
    assert conn.kind == "tcp"
    assert conn.op("send").bytes == 20 * 1000 + 5 * 2000
    assert conn.op("send").count == 25
    assert conn.op("recv").bytes == 30_000
    assert conn.op("connect").count == 2
    assert conn.op("response").count == 25
    assert conn.tcp["connections"] == 2 and conn.tcp["segs_out"] >= 25
    assert conn.tcp["total_retrans"] == 0
    assert report.connects[f"127.0.0.1:{server.port}"] == 2
    assert conn.location is not None and conn.location.function == "_exchange"
    assert aio.findings(report) == []
    assert IOReport.from_dict(report.to_dict()) == report


def test_a_slow_server_trips_the_latency_rule() -> None:
    with _server(delay=0.12) as server, aio.track() as tracker:
        _exchange(server.port, messages=3, size=100)
    conn = tracker.report.target(f"tcp 127.0.0.1:{server.port}")
    response = conn.op("response")
    assert response.count == 3
    assert response.avg_ns == pytest.approx(0.12e9, rel=0.2)
    [finding] = [f for f in aio.findings(tracker.report) if f.rule == "net.latency"]
    assert finding.measured == pytest.approx(120, rel=0.2) and finding.threshold == 100
    assert finding.location is not None and finding.location.function == "_exchange"
    # the same server 50 ms slow stays under the threshold
    with _server(delay=0.05) as server, aio.track() as tracker:
        _exchange(server.port, messages=3, size=100)
    assert [f for f in aio.findings(tracker.report) if f.rule == "net.latency"] == []


def _file(name: str, **ops: OpStats) -> TargetStats:
    return TargetStats("file", name, None, dict(ops))


def test_file_rules_both_sides() -> None:
    mb = 1_000_000
    fast = _file("/f", read=OpStats(1000, 100 * mb, 1_000_000_000, 1))  # 100 MB/s, 1 ms per call
    slow = _file("/s", write=OpStats(1000, 40 * mb, 1_000_000_000, 1))  # 40 MB/s
    tiny = _file("/t", read=OpStats(1000, 1000, 1_000_000_000, 1))  # slow but under min_bytes
    rules = [f.rule for f in aio.findings(IOReport(1.0, [fast, slow, tiny]))]
    assert rules.count("io.low-throughput") == 1
    [f] = [f for f in aio.findings(IOReport(1.0, [slow])) if f.rule == "io.low-throughput"]
    assert f.measured == pytest.approx(40) and f.threshold == 50
    assert aio.findings(IOReport(1.0, [slow]), min_throughput=30 * mb) == []
    ok = _file("/o", fsync=OpStats(4, 0, 40_000_000, 12_000_000))  # 10 ms average: not over
    late = _file("/l", fsync=OpStats(4, 0, 44_000_000, 12_000_000))  # 11 ms
    [f] = aio.findings(IOReport(1.0, [ok, late]))
    assert f.rule == "io.slow-ops" and f.measured == pytest.approx(11) and f.evidence["op"] == "fsync"
    assert aio.findings(IOReport(1.0, [late]), max_op_latency="20ms") == []


def test_network_rules_both_sides() -> None:
    lossy = TargetStats("tcp", "tcp 10.0.0.1:80", tcp={"segs_out": 1000, "total_retrans": 11})
    fine = TargetStats(
        "tcp", "tcp 10.0.0.2:80", tcp={"segs_out": 1000, "total_retrans": 10, "rtt_us": 100_000}
    )
    far = TargetStats("tcp", "tcp 10.0.0.3:80", tcp={"segs_out": 10, "rtt_us": 100_001})
    found = aio.findings(IOReport(1.0, [lossy, fine, far]))
    assert [(f.rule, f.evidence.get("segs_out")) for f in found if f.rule == "net.packet-loss"] == [
        ("net.packet-loss", 1000)
    ]
    assert [f.measured for f in found if f.rule == "net.latency"] == [pytest.approx(100.001)]
    snmp = IOReport(1.0, tcp_snmp={"OutSegs": 10_000, "RetransSegs": 101})
    [f] = aio.findings(snmp)
    assert f.rule == "net.packet-loss" and f.measured == pytest.approx(1.01)
    assert aio.findings(IOReport(1.0, tcp_snmp={"OutSegs": 10_000, "RetransSegs": 100})) == []
    busy = TargetStats("tcp", "tcp x:1", ops={"send": OpStats(1, 81_000_000, 1, 1)})
    [f] = aio.findings(IOReport(1.0, [busy]), link_speed=100e6)
    assert f.rule == "net.bandwidth" and f.measured == pytest.approx(81)
    assert aio.findings(IOReport(1.0, [busy]), link_speed=102e6) == []
    dev = IOReport(1.0, net_dev={"lo": {"rx_bytes": 90, "tx_bytes": 0}})
    assert aio.findings(dev) == []  # loopback has no link speed unless given
    assert [f.rule for f in aio.findings(dev, link_speed=100)] == ["net.bandwidth"]


def test_bad_inputs() -> None:
    report = IOReport(1.0)
    with pytest.raises(InvalidArgument):
        aio.findings(report, max_op_latency="slow")
    with pytest.raises(InvalidArgument):
        aio.findings(report, link_speed=0)
    with pytest.raises(InvalidArgument):
        aio.findings(report, min_throughput="fast")  # type: ignore[arg-type]
    with aio.track() as tracker, pytest.raises(ValueError), aio.track():
        pass
    assert tracker.report.duration >= 0
    with pytest.raises(RuntimeError):
        _ = aio.IOTracker().report
