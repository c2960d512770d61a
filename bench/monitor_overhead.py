"""What `aether monitor` costs per sample, beside the bare psutil calls it is built on.

Printed, never asserted. Every configuration runs interleaved with the others, round after round,
and each figure is the median over the rounds of the per-operation mean, so a noisy machine moves
all of them together. Ratios are against the bare-psutil baseline (same calls, no rates, no
process-tree walk) or, for the scrape, against prometheus_client's default registry.

    python bench/monitor_overhead.py [--rounds 7] [--children 20]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

import psutil
from aether_perf.monitor.alerts import AlertSystem, Rule
from aether_perf.monitor.metrics import GROUPS, MachineCollector, ProcessTreeCollector, Sample
from aether_perf.monitor.prometheus import PrometheusExporter


def bare_psutil() -> None:
    psutil.cpu_percent(None)
    psutil.virtual_memory()
    psutil.disk_io_counters()
    psutil.net_io_counters()


def measure(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(wall us, CPU us) per call."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - wall) / repeat * 1e6, (time.process_time() - cpu) / repeat * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--children", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=200)
    ns = parser.parse_args()

    sleepers = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            "sleep = [sys.executable, '-c', 'import time; time.sleep(600)']\n"
            f"ps = [subprocess.Popen(sleep) for _ in range({ns.children})]\n"
            "print('ok', flush=True); time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sleepers.stdout is not None
    sleepers.stdout.readline()
    machine = MachineCollector(GROUPS)
    tree = ProcessTreeCollector(sleepers.pid, GROUPS)
    rescanning = ProcessTreeCollector(sleepers.pid, GROUPS)
    rescanning.rescan_interval = 0.0  # what every sample costs at intervals >= 1 s
    rules = [
        Rule(f"r{i}", "memory_percent", warning=80, critical=90, predict=900, cooldown=0) for i in range(10)
    ]
    alerts = AlertSystem(rules)
    clock = [1_700_000_000.0]

    def check() -> None:
        clock[0] += 1
        alerts.check(Sample(clock[0], {"memory_percent": 50.0 + (clock[0] % 7)}))

    exporter = PrometheusExporter("127.0.0.1", 0)
    exporter.update(machine.collect(), {r.name: 0 for r in rules})
    from prometheus_client import start_http_server

    default_server, _ = start_http_server(0, addr="127.0.0.1")  # the default registry: process, gc, platform
    default_url = f"http://127.0.0.1:{default_server.server_address[1]}/metrics"

    def scrape(url: str) -> Callable[[], object]:
        return lambda: urllib.request.urlopen(url, timeout=5).read()

    configs: dict[str, tuple[Callable[[], object], int]] = {
        "psutil bare (baseline)": (bare_psutil, ns.repeat),
        "machine collector": (machine.collect, ns.repeat),
        f"process tree, {ns.children + 1} processes, cached": (tree.collect, max(10, ns.repeat // 10)),
        f"process tree, {ns.children + 1} processes, rescan": (rescanning.collect, max(10, ns.repeat // 10)),
        "alerts: 10 rules + trend": (check, ns.repeat),
        "scrape: prometheus_client default": (scrape(default_url), max(10, ns.repeat // 4)),
        "scrape: aether exporter": (scrape(exporter.url), max(10, ns.repeat // 4)),
    }
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in configs}
    for _ in range(ns.rounds):
        for name, (fn, repeat) in configs.items():
            results[name].append(measure(fn, repeat))
    exporter.close()
    default_server.shutdown()
    sleepers.kill()
    for child in psutil.Process().children(recursive=True):
        child.kill()

    base = statistics.median(w for w, _ in results["psutil bare (baseline)"])
    scrape_base = statistics.median(w for w, _ in results["scrape: prometheus_client default"])
    print(
        f"python {sys.version.split()[0]}, {psutil.cpu_count()} CPUs, {ns.rounds} interleaved rounds, medians"
    )
    print(f"{'configuration':<36} {'wall us':>10} {'cpu us':>10} {'ratio':>8}")
    for name, rows in results.items():
        wall = statistics.median(w for w, _ in rows)
        cpu = statistics.median(c for _, c in rows)
        ref = scrape_base if name.startswith("scrape") else base
        print(f"{name:<36} {wall:>10.1f} {cpu:>10.1f} {wall / ref:>7.2f}x")
    per_second = statistics.median(c for _, c in results["machine collector"]) / 1e6
    print(f"machine monitoring at 1 s: {per_second * 100:.4f}% of one CPU for collection")


if __name__ == "__main__":
    main()
