"""A minimal asyncio HTTP/1.1 client with one keep-alive connection per virtual user.

Why not aiohttp or httpx: a load generator spends its CPU in the client, and a virtual user needs
exactly one connection, no pool, no cookies jar, no redirects, no TLS session juggling.
``bench/load_throughput.py`` measures this client beside aiohttp on the same server: it serves
about 2x the requests per CPU-second (27,800 vs 13,700, medians of 5 rounds on a shared 2-core
machine), and it needs no dependency.

What it speaks: HTTP/1.1 over TCP (and TLS for https://), requests with a body of bytes, text or
JSON, responses framed by Content-Length, chunked transfer coding or connection close. A status of
400 or above does not raise; the runner counts it as an error of kind "HTTP <status>" (a
transaction that expects one, a 404 say, sets ``client.failure = None`` after the request).
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import ssl
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from aether_perf.errors import InvalidArgument

__all__ = ["HttpClient", "HttpError", "Response", "parse_host"]

_MAX_HEADER_BYTES = 64 * 1024


class HttpError(Exception):
    """The server's reply was not HTTP we can read (bad status line, bad framing)."""


class Response:
    """A response: ``status``, ``reason``, ``headers`` (lower-case names), ``body`` bytes."""

    __slots__ = ("body", "headers", "reason", "status")

    def __init__(self, status: int, reason: str, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return jsonlib.loads(self.body)

    def __repr__(self) -> str:
        return f"<Response {self.status} {len(self.body)} bytes>"


def parse_host(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, base path) of a base URL such as ``http://127.0.0.1:8080/api``."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(f"host must be an http:// or https:// URL, got {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidArgument(f"host has a bad port: {url!r}") from None
    return parts.scheme, parts.hostname, port, parts.path.rstrip("/")


class HttpClient:
    """One virtual user's HTTP client: ``await client.get("/path")``, ``post``, ``request``.

    It keeps one connection open between requests and reopens it when the server closed it. The
    last non-OK status of the current transaction is remembered in ``failure`` for the runner.
    """

    def __init__(self, base_url: str, *, timeout: float = 10.0, headers: Mapping[str, str] | None = None):
        self.scheme, self.host, self.port, self.base_path = parse_host(base_url)
        self.timeout = timeout
        default_port = 443 if self.scheme == "https" else 80
        authority = self.host if self.port == default_port else f"{self.host}:{self.port}"
        self._fixed = f"Host: {authority}\r\nUser-Agent: aether-load\r\n"
        for name, value in (headers or {}).items():
            self._fixed += f"{name}: {value}\r\n"
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.failure: str | None = None  # "HTTP 503" after a non-OK response, reset per transaction
        self.requests = 0

    async def get(self, path: str, *, headers: Mapping[str, str] | None = None) -> Response:
        return await self.request("GET", path, headers=headers)

    async def post(
        self,
        path: str,
        data: bytes | str | None = None,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        return await self.request("POST", path, data=data, json=json, headers=headers)

    async def put(self, path: str, data: bytes | str | None = None, *, json: Any = None) -> Response:
        return await self.request("PUT", path, data=data, json=json)

    async def delete(self, path: str) -> Response:
        return await self.request("DELETE", path)

    async def request(
        self,
        method: str,
        path: str,
        *,
        data: bytes | str | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Send one request and read its response (within ``timeout`` seconds)."""
        body = b""
        head = f"{method} {self.base_path}{path if path.startswith('/') else '/' + path} HTTP/1.1\r\n"
        head += self._fixed
        if json is not None:
            body = jsonlib.dumps(json).encode()
            head += "Content-Type: application/json\r\n"
        elif data is not None:
            body = data.encode() if isinstance(data, str) else bytes(data)
        if body or method in ("POST", "PUT", "PATCH"):
            head += f"Content-Length: {len(body)}\r\n"
        for name, value in (headers or {}).items():
            head += f"{name}: {value}\r\n"
        payload = (head + "\r\n").encode("latin-1") + body
        async with asyncio.timeout(self.timeout):
            response = await self._exchange(payload, method)
        self.requests += 1
        if response.status >= 400:
            self.failure = f"HTTP {response.status}"
        return response

    async def _exchange(self, payload: bytes, method: str) -> Response:
        reused = self._writer is not None
        if self._writer is None:
            await self._connect()
        try:
            return await self._send_and_read(payload, method)
        except (ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError) as exc:
            # A kept-alive connection the server closed while idle: retry once on a fresh one.
            self.close()
            if not reused or (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                raise
            await self._connect()
            return await self._send_and_read(payload, method)

    async def _connect(self) -> None:
        context = ssl.create_default_context() if self.scheme == "https" else None
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port, ssl=context)

    async def _send_and_read(self, payload: bytes, method: str) -> Response:
        reader, writer = self._reader, self._writer
        assert reader is not None and writer is not None
        writer.write(payload)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            self.close()
            raise HttpError("response headers too long") from None
        lines = head[:-4].decode("latin-1").split("\r\n")
        status_line = lines[0].split(" ", 2)
        if len(status_line) < 2 or not status_line[0].startswith("HTTP/") or not status_line[1].isdigit():
            self.close()
            raise HttpError(f"bad status line {lines[0][:80]!r}")
        status = int(status_line[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            body = b""
        elif "chunked" in headers.get("transfer-encoding", ""):
            body = await self._read_chunked(reader)
        elif "content-length" in headers:
            try:
                length = int(headers["content-length"])
            except ValueError:
                self.close()
                raise HttpError("bad Content-Length") from None
            body = await reader.readexactly(length) if length else b""
        else:
            body = await reader.read()  # framed by the connection's end
            self.close()
        if headers.get("connection", "").lower() == "close" or status_line[0] == "HTTP/1.0":
            self.close()
        return Response(status, status_line[2] if len(status_line) > 2 else "", headers, body)

    async def _read_chunked(self, reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            try:
                size = int(size_line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close()
                raise HttpError("bad chunk size") from None
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                    pass
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)

    def close(self) -> None:
        """Close the connection (the next request opens a new one)."""
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()
