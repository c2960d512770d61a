"""A loopback HTTP/1.1 server with known, controllable latency, for the load-testing tests.

    python load_server.py [--latency LOW_MS HIGH_MS] [--stall-after S --stall-for S] [--status N] [--port N]

It binds 127.0.0.1 on a free port (or --port) and prints ``PORT <n>`` on stdout. Request k (counted from 0)
waits ``LOW + (HIGH - LOW) * ((k * 37) % 100) / 99`` ms (asyncio.sleep, so requests overlap): over
any multiple of 100 requests the injected latencies are exactly the 100-point grid from LOW to HIGH,
whatever the order they arrive in. ``--stall-after S --stall-for D``: the first request that
arrives S seconds after the first one blocks the whole server for D seconds (time.sleep), as a
stop-the-world pause would. ``GET /stats`` returns how many requests were answered (not counted).

The server used by `Server` below runs it as a subprocess and stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def grid_latency(k: int, low: float, high: float) -> float:
    """Milliseconds request k waits (the 100-point grid from low to high)."""
    return low + (high - low) * ((k * 37) % 100) / 99


def injected(n: int, low: float, high: float) -> list[float]:
    """The latencies (seconds) the server injects into its first n requests."""
    return [grid_latency(k, low, high) / 1e3 for k in range(n)]


async def serve(args: argparse.Namespace) -> None:
    state = {"k": 0, "served": 0, "first": None, "stalled": False}
    service: list[float] = []  # seconds from a request's arrival to its reply, as the server saw it

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line = head.split(b"\r\n", 1)[0]
                length = 0
                for h in head.split(b"\r\n")[1:]:
                    if h.lower().startswith(b"content-length:"):
                        length = int(h.split(b":", 1)[1])
                if length:
                    await reader.readexactly(length)
                arrived = time.monotonic()
                if line.startswith(b"GET /stats "):
                    body = str(state["served"]).encode()
                    status = 200
                elif line.startswith(b"GET /service-times "):
                    body = json.dumps(service).encode()
                    status = 200
                else:
                    now = time.monotonic()
                    if state["first"] is None:
                        state["first"] = now
                    if (
                        args.stall_after is not None
                        and not state["stalled"]
                        and now - state["first"] >= args.stall_after
                    ):
                        state["stalled"] = True
                        time.sleep(args.stall_for)  # blocks every connection: a stop-the-world pause
                    k = state["k"]
                    state["k"] = k + 1
                    delay = grid_latency(k, args.latency[0], args.latency[1]) / 1e3
                    if delay > 0:
                        await asyncio.sleep(delay)
                    body = b"ok"
                    status = args.status
                    state["served"] += 1
                    service.append(time.monotonic() - arrived)
                writer.write(
                    b"HTTP/1.1 %d X\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n%s"
                    % (status, len(body), body)
                )
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", args.port, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(f"PORT {port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", nargs=2, type=float, default=(0.0, 0.0), metavar=("LOW_MS", "HIGH_MS"))
    parser.add_argument("--stall-after", type=float)
    parser.add_argument("--stall-for", type=float, default=1.0)
    parser.add_argument("--status", type=int, default=200)
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(serve(parser.parse_args()))


class Server:
    """``with Server("--latency", "10", "50") as url:`` a running load_server on 127.0.0.1."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> str:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), *self.args],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.proc.kill()
            raise RuntimeError(f"load_server did not start: {line!r}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"
        return self.url

    def served(self) -> int:
        import urllib.request

        with urllib.request.urlopen(self.url + "/stats", timeout=5) as reply:
            return int(reply.read())

    def service_times(self) -> list[float]:
        """Seconds each answered request took inside the server (arrival to reply)."""
        import urllib.request

        with urllib.request.urlopen(self.url + "/service-times", timeout=5) as reply:
            return [float(v) for v in json.loads(reply.read())]

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


if __name__ == "__main__":
    main()
