"""A Go-style ``/debug/pprof`` HTTP endpoint, so Parca, Grafana Alloy or ``go tool pprof`` can
scrape a running Python process::

    server = aether_native.serve_pprof(6060)          # 127.0.0.1:6060, a background thread
    # go tool pprof http://127.0.0.1:6060/debug/pprof/profile?seconds=30
    server.close()

``GET /debug/pprof/profile?seconds=N`` records the whole process with a :class:`Sampler` (the
server's ``mode`` and ``interval``) for N seconds (default 30, at most ``max_seconds``, 600 unless
set; a number, or a duration such as ``500ms``) and answers with the gzipped pprof of
:mod:`aether_perf.export.pprof`: ``Content-Type: application/octet-stream``,
``Content-Disposition: attachment; filename="profile.pb.gz"``, as Go's ``net/http/pprof`` does.
A missing ``seconds`` means 30; a bad one gets ``400`` and a one-line text message.

One profile at a time: sampling is process-wide, so a request that comes while a profile is
being recorded gets ``409 Conflict`` at once, with ``Retry-After`` set to the seconds left (Go
answers such a request with an error too, rather than queueing scrapers behind each other); so
does a request while another :class:`Sampler` of the program is running. A client that hangs up
stops its recording early. The server's own threads are excluded from the samples.

``GET /debug/pprof/`` is an HTML index; other paths get ``404``, other methods ``405``.
``close()`` stops the server; a profile being recorded then is discarded and its request gets
``503``. The endpoint has no authentication: keep it on a loopback address (the default) or
behind a proxy that checks who asks.
"""

from __future__ import annotations

import html
import importlib.util
import math
import select
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING

from aether_perf.errors import AetherError, InvalidArgument, RunFailed, SamplerBusyError
from aether_perf.units import format_duration, parse_duration

from aether_native import _core
from aether_native.sampler import Sampler

if TYPE_CHECKING:
    from aether_perf.model import Profile

__all__ = ["DEFAULT_SECONDS", "MAX_SECONDS", "PROFILE_PATH", "PprofServer", "serve_pprof"]

#: What a request without ``seconds`` records, as Go's net/http/pprof does.
DEFAULT_SECONDS = 30.0
#: The longest recording a request may ask for, unless serve_pprof(max_seconds=...) says otherwise.
MAX_SECONDS = 600.0
INDEX_PATH = "/debug/pprof/"
PROFILE_PATH = "/debug/pprof/profile"
#: How often a recording checks for close() and for a client that hung up.
_POLL = 0.05


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: PprofServer) -> None:
        self.owner = owner
        super().__init__(address, _Handler)


class _HTTPServer6(_HTTPServer):
    address_family = socket.AF_INET6


class PprofServer:
    """A running ``/debug/pprof`` endpoint (see the module doc); made by :func:`serve_pprof`.

    ``host`` and ``port`` are where it listens (the port the OS chose when asked for 0), ``url``
    is ``http://host:port``, ``profile_url`` the profile endpoint. ``busy`` tells whether a profile
    is being recorded. ``close()`` (or leaving a ``with`` block) stops it; calling it again does
    nothing.
    """

    def __init__(self, host: str, port: int, *, mode: str, interval: float, max_seconds: float) -> None:
        self.mode = mode
        self.interval = interval
        self.max_seconds = max_seconds
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._deadline = 0.0
        self._closed = False
        server_class = _HTTPServer6 if ":" in host else _HTTPServer
        try:
            self._httpd = server_class((host, port), self)
        except OSError as exc:
            raise RunFailed(f"cannot serve pprof on {host}:{port}: {exc.strerror or exc}") from None
        self.host = host
        self.port = int(self._httpd.server_address[1])
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{self.port}"
        self.profile_url = self.url + PROFILE_PATH
        self._thread = threading.Thread(target=self._serve, name=f"aether-pprof-{self.port}", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("recording" if self.busy else "idle")
        return f"<PprofServer {self.url} {self.mode} interval={format_duration(self.interval)} {state}>"

    @property
    def busy(self) -> bool:
        return not self._idle.is_set()

    @property
    def closed(self) -> bool:
        return self._closed

    def _serve(self) -> None:
        tid = _exclude_this_thread()
        try:
            self._httpd.serve_forever(poll_interval=0.1)
        finally:
            if tid:
                _core.unexclude_thread(tid)

    def close(self, timeout: float = 5.0) -> None:
        """Stop serving: no new connections, a recording in progress is discarded (its request
        gets 503), and the listening socket is closed. Waits up to ``timeout`` seconds for that."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout)
        self._idle.wait(timeout)

    def __enter__(self) -> PprofServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- used by the request handler ---------------------------------------------------------------

    def _claim(self, seconds: float) -> float | None:
        """Reserve the recorder for ``seconds``; None if free, else the seconds left on the current one."""
        with self._lock:
            if not self._idle.is_set():
                return max(self._deadline - time.monotonic(), 0.0)
            self._idle.clear()
            self._deadline = time.monotonic() + seconds
            return None

    def _release(self) -> None:
        with self._lock:
            self._idle.set()


def _exclude_this_thread() -> int:
    """Keep the calling thread out of the samples (it serves, it is not the program); 0 if the
    sampler's exclusion list is full."""
    try:
        return int(_core.exclude_current_thread())
    except OSError:
        return 0


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "aether-pprof"

    def log_message(self, format: str, *args: object) -> None:
        pass  # no request log on the program's stderr

    # -- responses -------------------------------------------------------------------------------

    def _reply(
        self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Cache-Control", "no-store")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError:
            pass  # the client went away

    def _text(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._reply(
            status, (" ".join(message.split()) + "\n").encode("utf-8"), "text/plain; charset=utf-8", headers
        )

    def _not_allowed(self) -> None:
        self._text(405, f"method {self.command} is not allowed; use GET", {"Allow": "GET"})

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _not_allowed

    def do_GET(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        if parts.path in (INDEX_PATH, INDEX_PATH.rstrip("/")):
            self._index()
        elif parts.path == PROFILE_PATH:
            self._profile(parts.query)
        else:
            self._text(404, f"no such page: {parts.path}; see {INDEX_PATH}")

    def _index(self) -> None:
        owner = self.server.owner
        interval = html.escape(format_duration(owner.interval))
        body = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>/debug/pprof/</title></head><body>
<h1>/debug/pprof/</h1>
<p>Profiles of this Python process, recorded by aether-native (mode {html.escape(owner.mode)},
one sample every {interval}).</p>
<table><thead><tr><th>Profile</th><th>Description</th></tr></thead><tbody>
<tr><td><a href="profile?seconds=30">profile</a></td>
<td>{html.escape(owner.mode)} profile of every thread for <code>seconds</code> seconds (default
{DEFAULT_SECONDS:g}, at most {owner.max_seconds:g}), as gzipped pprof. One at a time: a request
while one is recorded gets 409.</td></tr>
</tbody></table>
<p>Read it with <code>go tool pprof {html.escape(owner.url)}{PROFILE_PATH}?seconds=30</code>, or let
Parca or Grafana Alloy scrape <code>{PROFILE_PATH}</code>.</p>
</body></html>
"""
        self._reply(200, body.encode("utf-8"), "text/html; charset=utf-8")

    # -- the profile -----------------------------------------------------------------------------

    def _seconds(self, query: str) -> float | None:
        values = urllib.parse.parse_qs(query, keep_blank_values=True).get("seconds")
        if not values:
            return DEFAULT_SECONDS
        owner = self.server.owner
        try:
            return parse_duration(values[0], name="seconds", maximum=owner.max_seconds)
        except InvalidArgument as exc:
            self._text(400, str(exc))
            return None

    def _client_gone(self) -> bool:
        """True if the client closed its end (readable with no data), as Go's request context does."""
        try:
            poller = select.poll()
            poller.register(self.connection, select.POLLIN | select.POLLRDHUP)
            events = poller.poll(0)
            if not events:
                return False
            if events[0][1] & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                return True
            return bool(self.connection.recv(1, socket.MSG_PEEK) == b"")
        except OSError:
            return True

    def _profile(self, query: str) -> None:
        owner = self.server.owner
        seconds = self._seconds(query)
        if seconds is None:
            return
        left = owner._claim(seconds)
        if left is not None:
            self._text(
                409,
                f"a profile is already being recorded ({left:.1f}s left); one at a time, retry later",
                {"Retry-After": str(max(1, math.ceil(left)))},
            )
            return
        try:
            outcome, profile = self._record(seconds)
        finally:
            owner._release()  # the recorder is free before the answer goes out
        if outcome.startswith("busy:"):
            self._text(409, f"cannot record: {outcome[5:]}", {"Retry-After": "1"})
        elif outcome == "gone":
            self.close_connection = True
        elif outcome == "closing":
            self._text(503, "the pprof server is closing; the profile was discarded")
        else:
            try:
                from aether_perf.export import pprof

                assert profile is not None
                data = pprof.to_bytes(profile)
            except (AetherError, ImportError) as exc:
                self._text(500, f"cannot encode the profile: {exc}")
                return
            self._reply(
                200,
                data,
                "application/octet-stream",
                {"Content-Disposition": 'attachment; filename="profile.pb.gz"'},
            )

    def _record(self, seconds: float) -> tuple[str, Profile | None]:
        """Sample the process for ``seconds``: ``("done", profile)``, or ``("closing", ...)`` when
        close() came first, ``("gone", ...)`` when the client hung up, ``("busy:<why>", None)``
        when another Sampler runs."""
        owner = self.server.owner
        tid = _exclude_this_thread()
        try:
            sampler = Sampler(interval=owner.interval, mode=owner.mode)
            try:
                sampler.start()
            except SamplerBusyError as exc:
                return f"busy:{exc}", None
            outcome = "done"
            deadline = time.monotonic() + seconds
            try:
                while (left := deadline - time.monotonic()) > 0:
                    if owner._closing.wait(min(left, _POLL)):
                        outcome = "closing"
                        break
                    if self._client_gone():
                        outcome = "gone"
                        break
            finally:
                profile = sampler.stop()
            return outcome, profile
        finally:
            if tid:
                _core.unexclude_thread(tid)


def serve_pprof(
    port: int = 0,
    host: str = "127.0.0.1",
    *,
    mode: str = "cpu",
    interval: float | str = "1ms",
    max_seconds: float = MAX_SECONDS,
) -> PprofServer:
    """Serve ``/debug/pprof/profile?seconds=N`` on ``host:port`` from a background thread.

    ``port`` 0 lets the OS choose (read it from ``.port``); ``mode`` and ``interval`` are the
    :class:`Sampler`'s; ``max_seconds`` bounds what a request may ask for. Raises InvalidArgument
    for bad arguments and RunFailed when the address cannot be bound. See the module doc.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise InvalidArgument(f"port must be an integer from 0 to 65535, got {port!r}")
    if not isinstance(host, str) or not host:
        raise InvalidArgument(f"host must be an address such as '127.0.0.1', got {host!r}")
    probe = Sampler(interval=interval, mode=mode)  # validates mode and interval; never started
    limit = parse_duration(max_seconds, name="max_seconds", minimum=0.001, maximum=24 * 3600.0)
    if importlib.util.find_spec("google.protobuf") is None:
        raise RunFailed("serving pprof needs the 'protobuf' package (pip install 'protobuf>=4.21.6,<8')")
    return PprofServer(host, port, mode=probe.mode, interval=probe.interval, max_seconds=limit)
