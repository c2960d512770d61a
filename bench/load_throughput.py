"""Load-generator throughput: requests per second one process drives against a trivial local server.

    python bench/load_throughput.py [--rounds 3] [--duration 4] [--users 32] [--only native,locust-fast]

Engines, each run in a fresh process of this interpreter, closed model, no think time, the same
number of users (connections), the same duration:

- ``native``       aether's engine: asyncio users on its own HTTP/1.1 keep-alive client
- ``aiohttp``      the same asyncio user loop on an aiohttp ClientSession (one connection per user),
                   the alternative that the native client was chosen over
- ``locust-fast``  locust, one process, FastHttpUser (geventhttpclient)
- ``locust``       locust, one process, HttpUser (requests)

The server is one asyncio-Protocol process on 127.0.0.1 answering a fixed 2-byte body with no
delay; on a 2-core machine it and the load generator each get about one core, so a load generator
faster than the server is capped by it (the script prints the server's own CPU share to show
when). Rounds are interleaved (every round runs each engine once, in a new random order) and the
figures are medians over rounds; ratios are against ``native``. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "python"), os.environ.get("PYTHONPATH", "")])}

SERVER = r"""
import asyncio, sys
REPLY = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
class P(asyncio.Protocol):
    def connection_made(self, t): self.t = t; self.buf = b""
    def data_received(self, data):
        self.buf += data
        n = self.buf.count(b"\r\n\r\n")
        if n:
            self.buf = self.buf[self.buf.rfind(b"\r\n\r\n") + 4:]
            self.t.write(REPLY * n)
async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(P, "127.0.0.1", 0, backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()
asyncio.run(main())
"""

NATIVE = """
import json, sys
from aether_perf.load import Scenario, transaction
@transaction
async def hit(client):
    await client.get("/")
scenario = Scenario("bench", users=int(sys.argv[2]), duration=float(sys.argv[3]), transactions=[hit])
r = scenario.run(host=sys.argv[1])
print(json.dumps({"requests": r.total.count, "errors": r.total.error_count, "seconds": r.duration}))
"""

AIOHTTP = """
import asyncio, json, sys, time
import aiohttp
async def user(url, stop, counts):
    conn = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=conn) as s:
        while time.monotonic() < stop:
            async with s.get(url + "/") as r:
                await r.read()
                counts[0 if r.status < 400 else 1] += 1
async def main():
    url, users, duration = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    counts = [0, 0]
    t0 = time.monotonic()
    await asyncio.gather(*(user(url, t0 + duration, counts) for _ in range(users)))
    print(json.dumps({"requests": sum(counts), "errors": counts[1], "seconds": time.monotonic() - t0}))
asyncio.run(main())
"""

LOCUSTFILE = """
from locust import HttpUser, FastHttpUser, task, constant
class Fast(FastHttpUser):
    wait_time = constant(0)
    @task
    def hit(self):
        self.client.get("/")
class Plain(HttpUser):
    wait_time = constant(0)
    @task
    def hit(self):
        self.client.get("/")
"""

ENGINES = ("native", "aiohttp", "locust-fast", "locust")


def run_engine(name: str, url: str, users: int, duration: float, folder: Path) -> dict[str, float]:
    if name in ("native", "aiohttp"):
        code = NATIVE if name == "native" else AIOHTTP
        out = subprocess.run(
            [sys.executable, "-c", code, url, str(users), str(duration)],
            capture_output=True,
            text=True,
            env=ENV,
            timeout=duration + 60,
            check=True,
        )
        data = json.loads(out.stdout.strip().splitlines()[-1])
        return {"rps": data["requests"] / data["seconds"], "errors": data["errors"]}
    cls = "Fast" if name == "locust-fast" else "Plain"
    report = folder / "locust.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(folder / "locustfile.py"),
            cls,
            "--headless",
            "-u",
            str(users),
            "-r",
            "10000",
            "-t",
            f"{max(1, round(duration))}s",
            "--host",
            url,
            "--json-file",
            str(report.with_suffix("")),
            "--only-summary",
            "--loglevel",
            "ERROR",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=duration + 60,
    )
    if not report.exists():
        raise SystemExit(f"locust wrote no report (exit status {done.returncode}): {done.stderr[-2000:]}")
    stats = json.loads((folder / "locust.json").read_text())
    requests = sum(s["num_requests"] for s in stats)
    failures = sum(s["num_failures"] for s in stats)
    start = min(s["start_time"] for s in stats)
    last = max(s["last_request_timestamp"] for s in stats)
    return {"rps": requests / (last - start), "errors": failures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--users", type=int, default=32)
    parser.add_argument("--only", help="comma-separated engines (" + ",".join(ENGINES) + ")")
    args = parser.parse_args()
    engines = args.only.split(",") if args.only else list(ENGINES)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "locustfile.py").write_text(textwrap.dedent(LOCUSTFILE))
        server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None
            url = f"http://127.0.0.1:{int(server.stdout.readline())}"
            results: dict[str, list[float]] = {e: [] for e in engines}
            server_cpu: dict[str, list[float]] = {e: [] for e in engines}
            for r in range(args.rounds):
                order = random.sample(engines, len(engines))
                for engine in order:
                    cpu0 = _cpu(server.pid)
                    t0 = time.monotonic()
                    figures = run_engine(engine, url, args.users, args.duration, folder)
                    server_cpu[engine].append((_cpu(server.pid) - cpu0) / (time.monotonic() - t0))
                    results[engine].append(figures["rps"])
                    print(
                        f"round {r + 1}: {engine:12s} {figures['rps']:9,.0f} req/s  "
                        f"errors {figures['errors']:.0f}",
                        flush=True,
                    )
        finally:
            server.terminate()
            server.wait()
    print(
        f"\n{args.users} users, {args.duration:g} s per run, {args.rounds} interleaved rounds, medians; "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    base = statistics.median(results["native"]) if "native" in results else None
    print(f"{'engine':12s} {'req/s':>10s} {'vs native':>10s} {'server CPU (whole run incl. startup)'}")
    for engine in engines:
        med = statistics.median(results[engine])
        ratio = f"{med / base:9.2f}x" if base else "-"
        print(f"{engine:12s} {med:10,.0f} {ratio:>10s} {statistics.median(server_cpu[engine]) * 100:10.0f}%")


def _cpu(pid: int) -> float:
    """Seconds of CPU the process has used (utime + stime from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    main()
