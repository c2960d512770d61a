"""The load tester's HTTP/1.1 client against an in-process loopback server that frames replies
every way HTTP/1.1 allows: Content-Length, chunked, connection close; keep-alive reuse and reconnect."""

from __future__ import annotations

import asyncio

import pytest
from aether_perf.errors import InvalidArgument
from aether_perf.load.client import HttpClient, HttpError, parse_host


async def _serve(connections: list[int], requests: list[bytes]) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length) if length else b""
                requests.append(head + body)
                path = head.split(b" ")[1].removeprefix(b"/api")
                if path == b"/chunked":
                    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                    writer.write(b"5\r\nhello\r\n6;x=1\r\n world\r\n0\r\n\r\n")
                elif path == b"/close":
                    writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbye")
                    await writer.drain()
                    writer.close()
                    return
                elif path == b"/echo":
                    writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                elif path == b"/missing":
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                elif path == b"/garbage":
                    writer.write(b"SMTP ready\r\n\r\n")
                elif path == b"/idle-close":  # answer, then drop the kept-alive connection
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    await writer.drain()
                    writer.close()
                    return
                else:
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def test_framings_keep_alive_and_reconnects() -> None:
    async def main() -> None:
        connections: list[int] = []
        requests: list[bytes] = []
        server = await _serve(connections, requests)
        port = server.sockets[0].getsockname()[1]
        async with server:
            client = HttpClient(f"http://127.0.0.1:{port}/api", timeout=5)
            for _ in range(3):
                assert (await client.get("/plain")).text == "ok"
            assert len(connections) == 1  # kept alive
            assert (
                requests[0].startswith(b"GET /api/plain HTTP/1.1\r\n") and b"Host: 127.0.0.1:" in requests[0]
            )
            reply = await client.get("/chunked")
            assert reply.body == b"hello world" and reply.status == 200
            reply = await client.post("/echo", json={"a": 1})
            assert reply.status == 201 and reply.json() == {"a": 1}
            assert b"Content-Type: application/json" in requests[-1]
            assert client.failure is None
            reply = await client.get("/missing")
            assert reply.status == 404 and not reply.ok and client.failure == "HTTP 404"
            assert (await client.get("/close")).text == "bye"
            assert (await client.get("/plain")).text == "ok"  # a new connection after Connection: close
            assert len(connections) == 2
            await client.get("/idle-close")
            await asyncio.sleep(0.05)  # the server has closed the kept-alive connection
            assert (await client.get("/plain")).text == "ok"  # retried once on a fresh connection
            assert len(connections) == 3
            with pytest.raises(HttpError, match="bad status line"):
                await client.get("/garbage")
            client.close()

    asyncio.run(main())


def test_timeout_and_refused() -> None:
    async def main() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await asyncio.sleep(0.5)  # never answers in time
            writer.close()  # (3.12's Server.wait_closed waits for every connection to close)

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            client = HttpClient(f"http://127.0.0.1:{port}", timeout=0.2)
            with pytest.raises(TimeoutError):
                await client.get("/")
            client.close()
        with pytest.raises(ConnectionRefusedError):
            await HttpClient(f"http://127.0.0.1:{port}").get("/")

    asyncio.run(main())


def test_parse_host() -> None:
    assert parse_host("http://127.0.0.1:8080/api/") == ("http", "127.0.0.1", 8080, "/api")
    assert parse_host("https://example.test") == ("https", "example.test", 443, "")
    assert parse_host("localhost:9000") == ("http", "localhost", 9000, "")
    for bad in ("ftp://x", "http://", "http://h:99999"):
        with pytest.raises(InvalidArgument):
            parse_host(bad)
