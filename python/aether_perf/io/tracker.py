"""track(): per-call bytes and latencies of file and socket I/O while it is active.

How each layer is reached:

- files: ``open()`` (``builtins.open`` and ``io.open``) builds the usual buffered and text layers
  over :class:`TrackedFileIO`, a ``FileIO`` subclass whose ``readinto``/``readall``/``read``/
  ``write`` are timed; ``os.fsync``/``os.fdatasync`` are timed and charged to the file of the fd;
- sockets: the methods of ``socket.socket`` (a Python class) are replaced for the duration:
  ``send``/``sendall``/``sendto``/``recv``/``recv_into``/``recvfrom``/``recvfrom_into``/``connect``
  are timed, and a ``recv`` that follows a ``send`` on the same socket also records the
  *response* time (end of the send to end of the recv: the request/response latency the peer
  added). ``close`` (and the end of tracking) reads TCP_INFO of TCP sockets;
- audit hooks (``sys.addaudithook``; installed once, they cannot be removed, and do one dict
  lookup per event when no tracker is active) count ``open`` and ``socket.connect`` events,
  including opens that bypass ``open()`` such as ``os.open``.

Not seen: TLS sockets (``ssl.SSLSocket`` sends through OpenSSL, not ``socket.send``), ``os.read``/
``os.write`` on raw fds, and files opened before ``track()`` began (their bytes still show in
``process_io``). Code that bound ``open`` before (``from io import open``) is not tracked.
"""

from __future__ import annotations

import builtins
import io
import os
import socket
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import CodeType, FrameType
from typing import Any

from aether_perf.io.counters import delta, read_net_dev, read_process_io, read_tcp_snmp, tcp_info
from aether_perf.io.stats import IOReport, OpStats, StackStats, TargetStats
from aether_perf.model.finding import Location

__all__ = ["IOTracker", "TrackedFileIO", "track"]

_perf = time.perf_counter_ns
_real_open = io.open
_real_fsync = os.fsync
_real_fdatasync = os.fdatasync
_allocate = threading._allocate_lock  # type: ignore[attr-defined]
_OWN_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_SKIP_FILES = frozenset({socket.__file__, getattr(io, "__file__", ""), os.path.abspath(__file__)})
#: Frames kept per stack, innermost first; stacks kept per target.
STACK_DEPTH = 8
TOP_STACKS = 10

_PERF_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


_STDLIB = os.path.dirname(os.path.abspath(os.__file__)) + os.sep


def _ours(frame: FrameType | None) -> bool:
    """Whether aether itself (aether_perf, or aether_native if loaded) made this call, judged by
    the first caller outside the standard library: the sampler reading a thread's name, the
    scheduling poller, the runner reading the script. Not the program's I/O."""
    while frame is not None and frame.f_code.co_filename.startswith((_STDLIB, _OWN_DIR)):
        frame = frame.f_back
    if frame is None:
        return False
    name = frame.f_code.co_filename
    if name.startswith(_PERF_ROOT):
        return True
    native = sys.modules.get("aether_native")
    native_file = getattr(native, "__file__", None)
    return bool(native_file) and name.startswith(os.path.dirname(os.path.abspath(str(native_file))) + os.sep)


_MISSING = object()
_state: dict[str, Any] = {"tracker": None, "hooked": False}
_track_guard = _allocate()


_RawStack = tuple[tuple[CodeType, int], ...]


def _raw_stack(frame: FrameType | None) -> _RawStack:
    """The calling stack as (code, line) pairs: cheap per call; Locations are made at the end."""
    while frame is not None and (
        frame.f_code.co_filename.startswith(_OWN_DIR) or frame.f_code.co_filename in _SKIP_FILES
    ):
        frame = frame.f_back
    out: list[tuple[CodeType, int]] = []
    while frame is not None and len(out) < STACK_DEPTH:
        out.append((frame.f_code, frame.f_lineno or 0))
        frame = frame.f_back
    return tuple(out)


def _locations(raw: _RawStack) -> tuple[Location, ...]:
    return tuple(Location(code.co_filename, line, code.co_qualname) for code, line in raw)


def _stack(frame: FrameType | None) -> tuple[Location, ...]:
    return _locations(_raw_stack(frame))


class _Target:
    """The mutable accumulator behind one TargetStats."""

    __slots__ = ("kind", "location", "name", "ops", "stacks", "tcp")

    def __init__(self, kind: str, name: str, location: Location | None) -> None:
        self.kind = kind
        self.name = name
        self.location = location
        self.ops: dict[str, OpStats] = {}
        self.stacks: dict[tuple[str, _RawStack], OpStats] = {}
        self.tcp: dict[str, int] = {}

    def freeze(self) -> TargetStats:
        top = sorted(self.stacks.items(), key=lambda item: -item[1].total_ns)[:TOP_STACKS]
        return TargetStats(
            self.kind,
            self.name,
            self.location,
            {k: OpStats(v.count, v.bytes, v.total_ns, v.max_ns) for k, v in self.ops.items()},
            [
                StackStats(op, _locations(raw), OpStats(s.count, s.bytes, s.total_ns, s.max_ns))
                for (op, raw), s in top
            ],
            dict(self.tcp),
        )


class _Conn:
    __slots__ = ("last_send_end", "target")

    def __init__(self, target: _Target) -> None:
        self.target = target
        self.last_send_end = 0


class IOTracker:
    """The accumulators of one :func:`track` block; :meth:`report` freezes them."""

    def __init__(self) -> None:
        self._lock = _allocate()
        self._targets: dict[tuple[str, str], _Target] = {}
        self._fds: dict[int, _Target] = {}
        self._socks: weakref.WeakKeyDictionary[socket.socket, _Conn] = weakref.WeakKeyDictionary()
        self.opens: dict[str, int] = {}
        self.connects: dict[str, int] = {}
        self._start = time.monotonic()
        self._end: float | None = None
        self._io0 = read_process_io()
        self._snmp0 = read_tcp_snmp()
        self._dev0 = read_net_dev()
        self._result: IOReport | None = None

    # -- accumulation -------------------------------------------------------------------------
    def target(self, kind: str, name: str, frame: FrameType | None) -> _Target:
        key = (kind, name)
        found = self._targets.get(key)
        if found is None:
            stack = _stack(frame)
            with self._lock:
                found = self._targets.setdefault(key, _Target(kind, name, stack[0] if stack else None))
        return found

    def record(self, target: _Target, op: str, nbytes: int, ns: int, frame: FrameType | None) -> None:
        stack = _raw_stack(frame)
        with self._lock:
            stats = target.ops.get(op)
            if stats is None:
                stats = target.ops[op] = OpStats()
            stats.add(nbytes, ns)
            key = (op, stack)
            per_stack = target.stacks.get(key)
            if per_stack is None:
                per_stack = target.stacks[key] = OpStats()
            per_stack.add(nbytes, ns)

    def file_opened(self, fd: int, target: _Target) -> None:
        self._fds[fd] = target

    def file_closed(self, fd: int) -> None:
        self._fds.pop(fd, None)

    def fd_target(self, fd: int, frame: FrameType | None) -> _Target:
        found = self._fds.get(fd)
        if found is not None:
            return found
        try:
            name = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            name = f"fd {fd}"
        return self.target("file", name, frame)

    def conn(self, sock: socket.socket, frame: FrameType | None, address: Any = None) -> _Conn:
        try:
            return self._socks[sock]
        except KeyError:
            pass
        kind, name = _describe(sock, address)
        conn = _Conn(self.target(kind, name, frame))
        self._socks[sock] = conn
        return conn

    def snapshot_tcp(self, sock: socket.socket) -> None:
        conn = self._socks.get(sock)
        if conn is None or conn.target.kind != "tcp":
            return
        info = tcp_info(sock)
        if not info or not info.get("segs_out"):
            return
        with self._lock:
            tcp = conn.target.tcp
            tcp["connections"] = tcp.get("connections", 0) + 1
            tcp["rtt_us"] = max(tcp.get("rtt_us", 0), int(info.get("rtt_us", 0)))
            tcp["min_rtt_us"] = min(tcp.get("min_rtt_us", 1 << 62), int(info.get("min_rtt_us", 1 << 62)))
            for key in ("total_retrans", "segs_out", "segs_in", "lost", "bytes_retrans"):
                if key in info:
                    tcp[key] = tcp.get(key, 0) + int(info[key])

    # -- the result ---------------------------------------------------------------------------
    def stop(self) -> IOReport:
        if self._result is not None:
            return self._result
        for sock in list(self._socks.keys()):
            if sock.fileno() >= 0:
                self.snapshot_tcp(sock)
        self._end = time.monotonic()
        io1, snmp1, dev1 = read_process_io(), read_tcp_snmp(), read_net_dev()
        with self._lock:
            targets = [t.freeze() for t in self._targets.values()]
        targets.sort(key=lambda t: -sum(op.total_ns for op in t.ops.values()))
        self._result = IOReport(
            duration=self._end - self._start,
            targets=targets,
            process_io=delta(self._io0, io1),
            tcp_snmp=delta(self._snmp0, snmp1),
            net_dev={k: delta(self._dev0[k], v) for k, v in dev1.items() if k in self._dev0},
            opens=dict(self.opens),
            connects=dict(self.connects),
        )
        return self._result

    @property
    def report(self) -> IOReport:
        """The report (available once the ``track()`` block has ended)."""
        if self._result is None:
            raise RuntimeError("the I/O report is ready when the track() block has ended")
        return self._result


def _describe(sock: socket.socket, address: Any) -> tuple[str, str]:
    family, kind = sock.family, sock.type
    if family == socket.AF_UNIX:
        label = "unix"
    elif kind == socket.SOCK_STREAM:
        label = "tcp"
    elif kind == socket.SOCK_DGRAM:
        label = "udp"
    else:
        label = "socket"
    peer = address
    if peer is None:
        try:
            peer = sock.getpeername()
        except OSError:
            peer = None
    return label, f"{label} {_peer_text(peer)}"


def _peer_text(peer: Any) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = str(peer[0])
        return f"[{host}]:{peer[1]}" if ":" in host else f"{host}:{peer[1]}"
    if isinstance(peer, bytes):
        return peer.decode("utf-8", "backslashreplace") or "(unnamed)"
    return str(peer) if peer else "(unconnected)"


def _active() -> IOTracker | None:
    tracker: IOTracker | None = _state["tracker"]
    return tracker


# -- files --------------------------------------------------------------------------------------
class TrackedFileIO(io.FileIO):
    """A FileIO whose reads and writes are timed into the active tracker (if any)."""

    def __init__(self, file: Any, mode: str = "r", closefd: bool = True, opener: Any = None) -> None:
        super().__init__(file, mode, closefd, opener)
        tracker = _active()
        self._aether_target = None
        if tracker is not None and not _ours(sys._getframe(1)):
            name = os.fsdecode(file) if not isinstance(file, int) else f"fd {file}"
            if not isinstance(file, int):
                name = os.path.abspath(name)
            target = tracker.target("file", name, sys._getframe(1))
            self._aether_target = target
            tracker.file_opened(self.fileno(), target)

    def _aether_record(self, op: str, nbytes: int, ns: int) -> None:
        tracker = _active()
        if tracker is not None and self._aether_target is not None:
            tracker.record(self._aether_target, op, nbytes, ns, sys._getframe(2))

    def readinto(self, buffer: Any) -> int | None:
        start = _perf()
        n = super().readinto(buffer)
        self._aether_record("read", n or 0, _perf() - start)
        return n

    def readall(self) -> bytes:
        start = _perf()
        data = super().readall()
        self._aether_record("read", len(data), _perf() - start)
        return data

    def read(self, size: int = -1) -> bytes | None:  # type: ignore[override]
        start = _perf()
        data = super().read(size)
        self._aether_record("read", len(data) if data else 0, _perf() - start)
        return data

    def write(self, data: Any) -> int | None:  # type: ignore[override]
        start = _perf()
        n = super().write(data)
        self._aether_record("write", n or 0, _perf() - start)
        return n

    def close(self) -> None:
        tracker = _active()
        if tracker is not None and not self.closed:
            tracker.file_closed(self.fileno())
        super().close()


def tracked_open(
    file: Any,
    mode: str = "r",
    buffering: int = -1,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
    closefd: bool = True,
    opener: Any = None,
) -> Any:
    """``open()`` with a :class:`TrackedFileIO` under the usual buffered and text layers.

    Arguments that ``open()`` would refuse are handed to it, so the error is the real one.
    """
    try:
        modes = set(mode)
        valid = (
            isinstance(mode, str)
            and not (modes - set("axrwb+t"))
            and len(mode) == len(modes)
            and isinstance(buffering, int)
            and sum(c in modes for c in "xrwa") == 1
            and not ("t" in modes and "b" in modes)
            and not ("b" in modes and (encoding is not None or errors is not None or newline is not None))
            and not ("b" in modes and buffering == 1)
            and (isinstance(file, (str, bytes, int)) or hasattr(file, "__fspath__"))
        )
    except TypeError:
        valid = False
    if not valid:
        return _real_open(file, mode, buffering, encoding, errors, newline, closefd, opener)
    binary = "b" in modes
    raw_mode = "".join(c for c in "xrwa+" if c in modes)
    raw = TrackedFileIO(file, raw_mode, closefd, opener)
    try:
        line_buffering = False
        if buffering == 1 or (buffering < 0 and raw.isatty()):
            buffering = -1
            line_buffering = True
        if buffering < 0:
            buffering = io.DEFAULT_BUFFER_SIZE
            try:
                blksize = os.fstat(raw.fileno()).st_blksize
            except OSError:
                pass
            else:
                if blksize > 1:
                    buffering = blksize
        if buffering == 0:
            if binary:
                return raw
            raise ValueError("can't have unbuffered text I/O")
        buffer: Any
        if "+" in modes:
            buffer = io.BufferedRandom(raw, buffering)
        elif modes & set("xwa"):
            buffer = io.BufferedWriter(raw, buffering)
        else:
            buffer = io.BufferedReader(raw, buffering)
        if binary:
            return buffer
        text = io.TextIOWrapper(buffer, io.text_encoding(encoding), errors, newline, line_buffering)
        text.mode = mode  # type: ignore[misc]  # as open() sets it
        return text
    except BaseException:
        raw.close()
        raise


def _timed_sync(real: Callable[[Any], None], op: str) -> Callable[[Any], None]:
    def sync(fd: Any) -> None:
        tracker = _active()
        if tracker is None:
            return real(fd)
        start = _perf()
        real(fd)
        ns = _perf() - start
        number = fd if isinstance(fd, int) else fd.fileno()
        frame = sys._getframe(1)
        tracker.record(tracker.fd_target(number, frame), op, 0, ns, frame)
        return None

    sync.__name__ = real.__name__
    sync.__doc__ = real.__doc__
    return sync


# -- sockets ------------------------------------------------------------------------------------
_SOCKET_CLASS = socket.socket
_SEND_OPS = ("send", "sendall", "sendto")
_RECV_OPS = ("recv", "recv_into", "recvfrom", "recvfrom_into")


def _sent(result: Any, args: tuple[Any, ...], op: str) -> int:
    if op == "sendall":
        return len(memoryview(args[0]).cast("B")) if args else 0
    return int(result) if isinstance(result, int) else 0


def _received(result: Any, op: str) -> int:
    if op == "recv":
        return len(result)
    if op == "recv_into":
        return int(result)
    if op == "recvfrom":
        return len(result[0])
    return int(result[0])  # recvfrom_into


def _wrap_socket_method(op: str, real: Callable[..., Any]) -> Callable[..., Any]:
    is_send = op in _SEND_OPS

    def method(self: socket.socket, *args: Any, **kwargs: Any) -> Any:
        tracker = _active()
        if tracker is None:
            return real(self, *args, **kwargs)
        start = _perf()
        result = real(self, *args, **kwargs)
        end = _perf()
        frame = sys._getframe(1)
        address = args[-1] if op == "sendto" else None
        conn = tracker.conn(self, frame, address)
        if is_send:
            tracker.record(conn.target, "send", _sent(result, args, op), end - start, frame)
            conn.last_send_end = end
        else:
            nbytes = _received(result, op)
            tracker.record(conn.target, "recv", nbytes, end - start, frame)
            if conn.last_send_end and nbytes:
                tracker.record(conn.target, "response", 0, end - conn.last_send_end, frame)
                conn.last_send_end = 0
        return result

    method.__name__ = real.__name__
    method.__qualname__ = f"socket.{real.__name__}"
    method.__doc__ = real.__doc__
    return method


def _wrap_connect(real: Callable[..., Any]) -> Callable[..., Any]:
    def connect(self: socket.socket, address: Any) -> Any:
        tracker = _active()
        if tracker is None:
            return real(self, address)
        start = _perf()
        try:
            return real(self, address)
        finally:
            ns = _perf() - start
            frame = sys._getframe(1)
            tracker.record(tracker.conn(self, frame, address).target, "connect", 0, ns, frame)

    connect.__doc__ = real.__doc__
    return connect


def _wrap_close(real: Callable[..., Any]) -> Callable[..., Any]:
    def close(self: socket.socket) -> Any:
        tracker = _active()
        if tracker is not None and self.fileno() >= 0:
            tracker.snapshot_tcp(self)
        return real(self)

    close.__doc__ = real.__doc__
    return close


def _audit(event: str, args: tuple[Any, ...]) -> None:
    # Installed once for the life of the process: the common case is one dict lookup and out.
    tracker = _state["tracker"]
    if tracker is None or event not in ("open", "socket.connect"):
        return
    if event == "open":
        path = args[0]
        if isinstance(path, int):
            return
        key = os.fsdecode(path) if isinstance(path, (str, bytes)) else str(path)
        tracker.opens[key] = tracker.opens.get(key, 0) + 1
    else:
        key = _peer_text(args[1])
        tracker.connects[key] = tracker.connects.get(key, 0) + 1


@contextmanager
def track() -> Iterator[IOTracker]:
    """Track file and socket I/O inside the ``with`` block; ``tracker.report`` after it.

    Only one ``track()`` may be active at a time (ValueError otherwise).
    """
    if not _track_guard.acquire(False):
        raise ValueError("aether_perf.io.track() is already active")
    saved: list[tuple[Any, str, Any]] = []

    def patch(owner: Any, name: str, value: Any) -> None:
        # On a class, save only its own attribute: an inherited one is restored by deleting ours.
        saved.append((owner, name, vars(owner).get(name, _MISSING)))
        setattr(owner, name, value)

    tracker = IOTracker()
    try:
        if not _state["hooked"]:
            sys.addaudithook(_audit)
            _state["hooked"] = True
        patch(builtins, "open", tracked_open)
        patch(io, "open", tracked_open)
        patch(os, "fsync", _timed_sync(_real_fsync, "fsync"))
        patch(os, "fdatasync", _timed_sync(_real_fdatasync, "fsync"))
        for op in (*_SEND_OPS, *_RECV_OPS):
            real = getattr(_SOCKET_CLASS, op)
            patch(_SOCKET_CLASS, op, _wrap_socket_method(op, real))
        patch(_SOCKET_CLASS, "connect", _wrap_connect(_SOCKET_CLASS.connect))
        patch(_SOCKET_CLASS, "close", _wrap_close(_SOCKET_CLASS.close))
        _state["tracker"] = tracker
        yield tracker
    finally:
        _state["tracker"] = None
        for owner, name, original in reversed(saved):
            if original is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        tracker.stop()
        _track_guard.release()
