"""The fixed CPU-bound workload of the overhead benchmark, runnable under each in-process profiler.

    python bench/workload_cpu.py [--profiler none|aether|pyinstrument|yappi|cprofile]
                                 [--interval SECONDS] [--mode cpu|wall] [--scale F] [--depth N]

Three pure-Python functions with fixed iteration counts take about 60 / 30 / 10 % of the time
(``part_a`` integer arithmetic, ``part_b`` dict updates, ``part_c`` list and float work). They
make no Python-to-Python calls, so a function's self time is its whole time; the builtins and
methods they call (``dict.get``, ``list.append``, ``sum``) are C code that a sampling profiler
charges to the calling Python function. They run interleaved in ``CHUNKS`` rounds (a, b, c, a,
b, c, ...), each part timed with ``time.perf_counter``, so a profiler that starts late or a CPU
whose speed drifts still sees the same proportions. The whole thing runs ``--depth`` frames
deep, so a sampler walks a stack of realistic depth rather than three frames.

Prints one line ``BENCH_RESULT {json}`` on stdout: the workload's own wall and thread-CPU time,
the wall and CPU time of each part, and what the profiler (if any) attributed to each part.
``sampler_overhead.py`` runs this file in a fresh process per measurement; py-spy runs it with
``--profiler none``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

#: Iterations per chunk of each part, and chunks per run: about 1.7 s on CPython 3.11 on a
#: 2-core AMD EPYC VM, with part_a : part_b : part_c close to 60 : 30 : 10.
N_A = 236_000
N_B = 180_000
N_C = 71_000
CHUNKS = 40
DEFAULT_DEPTH = 16
PARTS = ("part_a", "part_b", "part_c")
RESULT_PREFIX = "BENCH_RESULT "
ENTRY = "run_workload"


def part_a(n: int) -> int:
    """Integer arithmetic (a linear congruential generator with a branch)."""
    x = 1
    acc = 0
    for i in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        if x & 0x10:
            acc += x >> 7
        else:
            acc -= i
    return acc


def part_b(n: int) -> int:
    """Dict subscripts, with a method call every fourth iteration."""
    counts = dict.fromkeys(range(64), 0)
    total = 0
    for i in range(n):
        key = (i * 7) & 63
        counts[key] += i
        if not i & 3:
            total += counts.get(key ^ 5, 0)
    return total


def part_c(n: int) -> float:
    """Float arithmetic into a list, with a builtin call every fourth iteration and a sum of the
    list every 64."""
    buf = [0.0] * 64
    total = 0.0
    for i in range(n):
        x = i * 0.5 - 3.0
        buf[i & 63] = x
        if not i & 3:
            total += abs(x)
        if i & 63 == 63:
            total += sum(buf)
    return total


def run_workload(chunks: int) -> dict[str, float]:
    """Run every part ``chunks`` times, interleaved; return the seconds each part took, by
    ``perf_counter`` (keys ``part_a``...) and by this thread's CPU clock (``cpu:part_a``...)."""
    clock = time.perf_counter
    cpu = time.thread_time
    spent = dict.fromkeys((*PARTS, *(f"cpu:{p}" for p in PARTS)), 0.0)
    for _ in range(chunks):
        c0 = cpu()
        t0 = clock()
        part_a(N_A)
        t1 = clock()
        c1 = cpu()
        part_b(N_B)
        t2 = clock()
        c2 = cpu()
        part_c(N_C)
        t3 = clock()
        c3 = cpu()
        spent["part_a"] += t1 - t0
        spent["part_b"] += t2 - t1
        spent["part_c"] += t3 - t2
        spent["cpu:part_a"] += c1 - c0
        spent["cpu:part_b"] += c2 - c1
        spent["cpu:part_c"] += c3 - c2
    return spent


def nest(depth: int, fn: Callable[[], dict[str, float]]) -> dict[str, float]:
    """Call ``fn`` ``depth`` frames below here."""
    if depth <= 0:
        return fn()
    return nest(depth - 1, fn)


def _short_name(function: str) -> str:
    return function.rsplit(".", 1)[-1]


# -- one recorder per in-process profiler ----------------------------------------------------------
# Each returns (result extras) after running ``work`` under the profiler; the profiler is set up
# before and torn down after the timed region, so its start/stop cost shows in the process time
# only.


def _measure(work: Callable[[], dict[str, float]]) -> dict[str, Any]:
    w0, c0 = time.perf_counter(), time.thread_time()
    spent = work()
    w1, c1 = time.perf_counter(), time.thread_time()
    return {"workload_s": w1 - w0, "thread_cpu_s": c1 - c0, "parts_s": spent}


def run_none(work: Callable[[], dict[str, float]], args: argparse.Namespace) -> dict[str, Any]:
    return _measure(work)


def _threads_cpu_ns() -> dict[int, int]:
    """Nanoseconds on a CPU so far of each thread of this process, from /proc/self/task/*/schedstat."""
    out = {}
    for task in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{task}/schedstat") as f:
                out[int(task)] = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return out


def run_aether(work: Callable[[], dict[str, float]], args: argparse.Namespace) -> dict[str, Any]:
    import threading

    import numpy as np

    import aether_native

    sampler = aether_native.Sampler(interval=args.interval, mode=args.mode)
    main = threading.main_thread().native_id
    sampler.start()
    s0 = time.thread_time()
    threads0 = _threads_cpu_ns()
    out = _measure(work)
    threads1 = _threads_cpu_ns()
    s1 = time.thread_time()
    profile = sampler.stop()
    # CPU of the sampler's own threads (sampler and drain) while the workload ran.
    helpers_cpu_s = sum(ns - threads0.get(tid, 0) for tid, ns in threads1.items() if tid != main) / 1e9
    n_stacks = len(profile.stacks)
    names = [_short_name(f.function) for f in profile.frames]
    # Per interned stack: the leaf function, and whether the workload entry is on it.
    leaf = [names[s[-1]] if s else "" for s in profile.stacks]
    inside = np.array([any(names[i] == ENTRY for i in s) for s in profile.stacks], dtype=bool)
    mine = profile.tid == main
    weight = profile.weight_ns.astype(np.float64)
    by_stack = np.bincount(profile.stack[mine], weights=weight[mine], minlength=n_stacks)
    total = float(by_stack[inside].sum()) if n_stacks else 0.0
    shares = {
        part: float(sum(by_stack[i] for i in range(n_stacks) if inside[i] and leaf[i] == part)) / total
        if total
        else 0.0
        for part in PARTS
    }
    meta = profile.meta
    out["profiler"] = {
        "shares": shares,
        "samples": int(mine.sum()),
        "samples_all_threads": int(meta.sample_count),
        "sampled_cpu_s": s1 - s0,
        "dropped": int(meta.dropped),
        "sampler": dict(meta.extra.get("sampler", {})),
        "weight_total_s": float(weight[mine].sum()) / 1e9,
        "duration_s": float(meta.duration),
        "helper_threads_cpu_s": helpers_cpu_s,
    }
    return out


def run_pyinstrument(work: Callable[[], dict[str, float]], args: argparse.Namespace) -> dict[str, Any]:
    from pyinstrument import Profiler

    profiler = Profiler(interval=args.interval)
    profiler.start()
    out = _measure(work)
    session = profiler.stop()
    # A frame record is (call stack root first, seconds); C functions appear as "<built-in>"
    # frames, so the self function is the innermost frame that is Python code, the way a
    # sampler that reads Python frames only would see it.
    total = 0.0
    per_part = dict.fromkeys(PARTS, 0.0)
    samples = 0
    for stack, seconds in session.frame_records:
        fields = [entry.split("\x00") for entry in stack]
        functions = [f[0] for f in fields]
        if ENTRY not in functions:
            continue
        samples += 1
        total += seconds
        python = [f[0] for f in fields if len(f) > 1 and f[1] != "<built-in>"]
        if python and python[-1] in per_part:
            per_part[python[-1]] += seconds
    out["profiler"] = {
        "shares": {p: (v / total if total else 0.0) for p, v in per_part.items()},
        "samples": samples,
        "sampled_cpu_s": out["thread_cpu_s"],
        "dropped": None,
    }
    return out


def run_yappi(work: Callable[[], dict[str, float]], args: argparse.Namespace) -> dict[str, Any]:
    import yappi

    yappi.set_clock_type("cpu")
    yappi.start()
    out = _measure(work)
    yappi.stop()
    totals = {stat.name: float(stat.ttot) for stat in yappi.get_func_stats() if stat.name in (*PARTS, ENTRY)}
    entry = totals.get(ENTRY, 0.0)
    out["profiler"] = {"shares": {p: (totals.get(p, 0.0) / entry if entry else 0.0) for p in PARTS}}
    return out


def run_cprofile(work: Callable[[], dict[str, float]], args: argparse.Namespace) -> dict[str, Any]:
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    out = _measure(work)
    prof.disable()
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    totals = {key[2]: float(value[3]) for key, value in raw.items() if key[2] in (*PARTS, ENTRY)}
    entry = totals.get(ENTRY, 0.0)
    out["profiler"] = {"shares": {p: (totals.get(p, 0.0) / entry if entry else 0.0) for p in PARTS}}
    return out


RECORDERS: dict[str, Callable[[Callable[[], dict[str, float]], argparse.Namespace], dict[str, Any]]] = {
    "none": run_none,
    "aether": run_aether,
    "pyinstrument": run_pyinstrument,
    "yappi": run_yappi,
    "cprofile": run_cprofile,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--profiler", choices=sorted(RECORDERS), default="none")
    parser.add_argument("--interval", type=float, default=0.001, help="sampling interval, seconds")
    parser.add_argument("--mode", choices=("cpu", "wall"), default="cpu", help="aether sampling mode")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the number of chunks")
    parser.add_argument("--depth", type=int, default=DEFAULT_DEPTH, help="frames above the workload")
    args = parser.parse_args(argv)
    chunks = max(1, round(CHUNKS * args.scale))

    def work() -> dict[str, float]:
        return nest(args.depth, lambda: run_workload(chunks))

    result = RECORDERS[args.profiler](work, args)
    result.update(
        profiler_name=args.profiler,
        chunks=chunks,
        depth=args.depth,
        python=".".join(map(str, sys.version_info[:3])),
    )
    sys.stdout.write(RESULT_PREFIX + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
