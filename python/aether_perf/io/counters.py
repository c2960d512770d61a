"""System and process I/O counters: /proc/self/io, /proc/net/snmp, /proc/net/dev, TCP_INFO.

Each reader returns a plain dict of integers (empty when the file is missing, as on a kernel
without task I/O accounting), so deltas are ``after[k] - before[k]``.
"""

from __future__ import annotations

import io
import socket
import struct
from typing import Any

_open = io.open  # bound now: while tracking, builtins.open is the tracked one

__all__ = ["delta", "read_net_dev", "read_process_io", "read_tcp_snmp", "tcp_info"]


def read_process_io(pid: int | str = "self") -> dict[str, int]:
    """``/proc/<pid>/io``: rchar, wchar (all read/write bytes, sockets and pipes too), syscr, syscw,
    read_bytes, write_bytes (the storage layer), cancelled_write_bytes."""
    try:
        with _open(f"/proc/{pid}/io", encoding="ascii") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return {}
    out: dict[str, int] = {}
    for line in lines:
        key, _, value = line.partition(":")
        if value.strip().isdigit():
            out[key.strip()] = int(value)
    return out


def read_tcp_snmp() -> dict[str, int]:
    """The ``Tcp:`` row of ``/proc/net/snmp`` (RetransSegs, OutSegs, InSegs, InErrs, ...)."""
    try:
        with _open("/proc/net/snmp", encoding="ascii") as handle:
            rows = [line.split() for line in handle if line.startswith("Tcp:")]
    except OSError:
        return {}
    if len(rows) < 2:
        return {}
    names, values = rows[0][1:], rows[1][1:]
    return {name: int(value) for name, value in zip(names, values, strict=False)}


_DEV_FIELDS = (
    "rx_bytes",
    "rx_packets",
    "rx_errs",
    "rx_drop",
    "rx_fifo",
    "rx_frame",
    "rx_compressed",
    "rx_multicast",
    "tx_bytes",
    "tx_packets",
    "tx_errs",
    "tx_drop",
    "tx_fifo",
    "tx_colls",
    "tx_carrier",
    "tx_compressed",
)


def read_net_dev() -> dict[str, dict[str, int]]:
    """``/proc/net/dev`` per interface: rx/tx bytes, packets, errs, drop, ..."""
    try:
        with _open("/proc/net/dev", encoding="ascii") as handle:
            lines = handle.read().splitlines()[2:]
    except OSError:
        return {}
    out: dict[str, dict[str, int]] = {}
    for line in lines:
        name, _, rest = line.partition(":")
        values = rest.split()
        if len(values) >= len(_DEV_FIELDS):
            out[name.strip()] = {k: int(v) for k, v in zip(_DEV_FIELDS, values, strict=False)}
    return out


def link_speed(interface: str) -> float | None:
    """The interface's link speed in bytes per second from sysfs, or None when unknown."""
    try:
        with _open(f"/sys/class/net/{interface}/speed", encoding="ascii") as handle:
            mbit = int(handle.read().strip())
    except (OSError, ValueError):
        return None
    return mbit * 1e6 / 8 if mbit > 0 else None


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """``after - before`` for every key in both."""
    return {k: after[k] - before[k] for k in after if k in before}


# struct tcp_info (linux/tcp.h): (name, offset, format); decoded only as far as the kernel filled it.
_TCP_INFO_FIELDS: tuple[tuple[str, int, str], ...] = (
    ("state", 0, "B"),
    ("retransmits", 2, "B"),
    ("rto_us", 8, "I"),
    ("snd_mss", 16, "I"),
    ("unacked", 24, "I"),
    ("lost", 32, "I"),
    ("retrans", 36, "I"),
    ("pmtu", 60, "I"),
    ("rtt_us", 68, "I"),
    ("rttvar_us", 72, "I"),
    ("snd_cwnd", 80, "I"),
    ("total_retrans", 100, "I"),
    ("bytes_acked", 120, "Q"),
    ("bytes_received", 128, "Q"),
    ("segs_out", 136, "I"),
    ("segs_in", 140, "I"),
    ("min_rtt_us", 148, "I"),
    ("delivery_rate", 160, "Q"),
    ("busy_time_us", 168, "Q"),
    ("bytes_sent", 200, "Q"),
    ("bytes_retrans", 208, "Q"),
)
_TCP_INFO_SIZE = 232


def tcp_info(sock: socket.socket) -> dict[str, Any] | None:
    """TCP_INFO of a connected TCP socket (rtt in µs, retransmits, bytes...), or None."""
    if not hasattr(socket, "TCP_INFO"):
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_SIZE)
    except OSError:
        return None
    out: dict[str, Any] = {}
    for name, offset, fmt in _TCP_INFO_FIELDS:
        size = struct.calcsize(fmt)
        if offset + size <= len(raw):
            out[name] = struct.unpack_from("=" + fmt, raw, offset)[0]
    return out
