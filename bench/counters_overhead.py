"""Counters benchmark: the cost of one perf_event group read, and the overhead of `aether stat`.

    python bench/counters_overhead.py [--rounds 7] [--reads 200000] [--scale 0.5] [--json out.json]

1. Group read: one ``read()`` of a group leader with PERF_FORMAT_GROUP returns every member with
   its enabled/running times. Measured in C (a tight loop of reads without the GIL, mean ns per
   read) for a group of 1, 4 and 7 software events (hardware events too where a PMU exists),
   beside the Python-level ``Counters.read()`` that builds a CounterReading. Each repeated
   ``--rounds`` times, interleaved; medians printed.
2. `aether stat` overhead: ``bench/workload_cpu.py`` run in a fresh process per measurement,
   plain (``python workload_cpu.py``) and under ``python -m aether_native stat`` (default
   events; and with ``--interval 100ms``), interleaved in a new random order every round. Prints
   the median workload wall and thread-CPU time (the workload times itself, so interpreter
   start-up is left out) and their ratios to the plain run. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORKLOAD = HERE / "workload_cpu.py"
RESULT_PREFIX = "BENCH_RESULT "

SOFTWARE = [(1, 1), (1, 2), (1, 3), (1, 4), (1, 5), (1, 6), (1, 0)]  # task-clock, faults, cs, ...


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    extra = [str(REPO), str(REPO / "python")]
    env["PYTHONPATH"] = os.pathsep.join(extra + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


def group_read_costs(rounds: int, reads: int) -> dict[str, float]:
    sys.path[:0] = [str(REPO), str(REPO / "python")]
    from aether_native import Counters, _core

    groups: dict[str, Any] = {
        "group of 1 (task-clock)": _core.CounterGroup(SOFTWARE[:1]),
        "group of 4 software": _core.CounterGroup(SOFTWARE[:4]),
        "group of 7 software": _core.CounterGroup(SOFTWARE[:7]),
    }
    if _core.counter_probe(0, 1) == 0:
        groups["group of 4 hardware"] = _core.CounterGroup([(0, 1), (0, 0), (0, 3), (0, 5)])
    for group in groups.values():
        group.enable()
    counters = Counters(["task-clock", "page-faults", "context-switches", "cpu-migrations"]).start()
    samples: dict[str, list[float]] = {name: [] for name in groups}
    samples["Counters.read() (4 events, Python)"] = []
    for _ in range(rounds):
        order = list(samples)
        random.shuffle(order)
        for name in order:
            if name in groups:
                samples[name].append(groups[name].read_ns(reads))
            else:
                n = max(1, reads // 50)
                t0 = time.perf_counter_ns()
                for _ in range(n):
                    counters.read()
                samples[name].append((time.perf_counter_ns() - t0) / n)
    counters.stop()
    for group in groups.values():
        group.close()
    return {name: statistics.median(values) for name, values in samples.items()}


def run_workload(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """The workload's own (wall, thread CPU) seconds."""
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=True)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
            return float(result["workload_s"]), float(result["thread_cpu_s"])
    raise RuntimeError(f"no result from {command}: {done.stdout[-500:]} {done.stderr[-500:]}")


def stat_overhead(rounds: int, scale: float) -> dict[str, dict[str, float]]:
    env = child_env()
    workload = [str(WORKLOAD), "--scale", str(scale)]
    configs = {
        "plain": [sys.executable, *workload],
        "aether stat": [sys.executable, "-m", "aether_native", "stat", "-q", "--json", os.devnull, *workload],
        "aether stat --interval 100ms": [
            sys.executable,
            "-m",
            "aether_native",
            "stat",
            "-q",
            "--interval",
            "100ms",
            "--json",
            os.devnull,
            *workload,
        ],
    }
    walls: dict[str, list[float]] = {name: [] for name in configs}
    cpus: dict[str, list[float]] = {name: [] for name in configs}
    for rnd in range(rounds):
        order = list(configs)
        random.shuffle(order)
        for name in order:
            wall, cpu = run_workload(configs[name], env)
            walls[name].append(wall)
            cpus[name].append(cpu)
        print(f"  round {rnd + 1}/{rounds} done", file=sys.stderr)
    base_wall = statistics.median(walls["plain"])
    base_cpu = statistics.median(cpus["plain"])
    return {
        name: {
            "median_wall_s": statistics.median(walls[name]),
            "wall_ratio": statistics.median(walls[name]) / base_wall,
            "median_cpu_s": statistics.median(cpus[name]),
            "cpu_ratio": statistics.median(cpus[name]) / base_cpu,
        }
        for name in configs
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--reads", type=int, default=200_000, help="reads per group-read measurement")
    parser.add_argument("--scale", type=float, default=0.5, help="workload_cpu.py --scale")
    parser.add_argument("--json", help="also write the figures as JSON")
    args = parser.parse_args(argv)

    print(f"perf_event group read, median of {args.rounds} interleaved rounds:")
    reads = group_read_costs(args.rounds, args.reads)
    for name, ns in reads.items():
        print(f"  {name:<40} {ns:10.0f} ns per read")
    print(f"\n`aether stat` on bench/workload_cpu.py --scale {args.scale}, median of {args.rounds} rounds:")
    overhead = stat_overhead(args.rounds, args.scale)
    print(f"  {'':<32} {'wall s':>8} {'ratio':>7} {'CPU s':>8} {'ratio':>7}")
    for name, row in overhead.items():
        print(
            f"  {name:<32} {row['median_wall_s']:8.3f} {row['wall_ratio']:7.3f} "
            f"{row['median_cpu_s']:8.3f} {row['cpu_ratio']:7.3f}"
        )
    load = os.getloadavg()[0]
    print(f"  (load average now: {load:.1f} on {os.cpu_count()} CPUs; shared machines are noisy)")
    if args.json:
        Path(args.json).write_text(json.dumps({"group_read_ns": reads, "stat_overhead": overhead}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
