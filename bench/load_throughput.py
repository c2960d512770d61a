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
delay; on a 2-core machine it and the load generator each get about one core. Two figures per run:
requests per second of wall time (what the generator drove), and requests per CPU-second the
generator itself used during the run (``time.process_time``; for locust from its test_start to
test_stop events), which shows the client's cost even when a shared machine starves it. Rounds are
interleaved (every round runs each engine once, in a new random order) and the figures are medians
over rounds; ratios are against ``native``. Nothing is asserted.
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
import json, sys, time
from aether_perf.load import Scenario, transaction
@transaction
async def hit(client):
    await client.get("/")
scenario = Scenario("bench", users=int(sys.argv[2]), duration=float(sys.argv[3]), transactions=[hit])
cpu = time.process_time()
r = scenario.run(host=sys.argv[1])
cpu = time.process_time() - cpu
total = r.total
print(json.dumps({"requests": total.count, "errors": total.error_count, "seconds": r.duration, "cpu": cpu}))
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
    t0, cpu = time.monotonic(), time.process_time()
    await asyncio.gather(*(user(url, t0 + duration, counts) for _ in range(users)))
    seconds, cpu = time.monotonic() - t0, time.process_time() - cpu
    print(json.dumps({"requests": sum(counts), "errors": counts[1], "seconds": seconds, "cpu": cpu}))
asyncio.run(main())
"""

LOCUSTFILE = """
import os, time
from locust import HttpUser, FastHttpUser, task, constant, events
_cpu = {}
@events.test_start.add_listener
def _started(**kwargs):
    _cpu["start"] = time.process_time()
@events.test_stop.add_listener
def _stopped(**kwargs):
    with open(os.environ["BENCH_CPU_FILE"], "w") as f:
        f.write(str(time.process_time() - _cpu["start"]))
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
        return {
            "rps": data["requests"] / data["seconds"],
            "errors": data["errors"],
            "per_cpu": data["requests"] / data["cpu"],
        }
    cls = "Fast" if name == "locust-fast" else "Plain"
    report = folder / "locust.json"
    cpu_file = folder / "cpu.txt"
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
        env={**ENV, "BENCH_CPU_FILE": str(cpu_file)},
        timeout=duration + 60,
    )
    if not report.exists():
        raise SystemExit(f"locust wrote no report (exit status {done.returncode}): {done.stderr[-2000:]}")
    stats = json.loads((folder / "locust.json").read_text())
    requests = sum(s["num_requests"] for s in stats)
    failures = sum(s["num_failures"] for s in stats)
    start = min(s["start_time"] for s in stats)
    last = max(s["last_request_timestamp"] for s in stats)
    per_cpu = requests / float(cpu_file.read_text())
    return {"rps": requests / (last - start), "errors": failures, "per_cpu": per_cpu}


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
            rps: dict[str, list[float]] = {e: [] for e in engines}
            per_cpu: dict[str, list[float]] = {e: [] for e in engines}
            for r in range(args.rounds):
                for engine in random.sample(engines, len(engines)):
                    figures = run_engine(engine, url, args.users, args.duration, folder)
                    rps[engine].append(figures["rps"])
                    per_cpu[engine].append(figures["per_cpu"])
                    print(
                        f"round {r + 1}: {engine:12s} {figures['rps']:9,.0f} req/s  "
                        f"{figures['per_cpu']:9,.0f} req/CPU-s  errors {figures['errors']:.0f}",
                        flush=True,
                    )
        finally:
            server.terminate()
            server.wait()
    print(
        f"\n{args.users} users, {args.duration:g} s per run, {args.rounds} interleaved rounds, medians; "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    print(f"{'engine':12s} {'req/s':>10s} {'vs native':>10s} {'req/CPU-s':>10s} {'vs native':>10s}")
    base = statistics.median(rps["native"]) if "native" in rps else None
    base_cpu = statistics.median(per_cpu["native"]) if "native" in per_cpu else None
    for engine in engines:
        med, med_cpu = statistics.median(rps[engine]), statistics.median(per_cpu[engine])
        ratio = f"{med / base:9.2f}x" if base else "-"
        ratio_cpu = f"{med_cpu / base_cpu:9.2f}x" if base_cpu else "-"
        print(f"{engine:12s} {med:10,.0f} {ratio:>10s} {med_cpu:10,.0f} {ratio_cpu:>10s}")


if __name__ == "__main__":
    main()
