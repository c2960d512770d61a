"""What an instrumented lock costs on the uncontended path, beside the plain threading locks.

    python bench/locks_overhead.py            # 15 rounds x 200k acquire/release pairs per variant
    python bench/locks_overhead.py --rounds 31 --n 500000

Each round times every variant once, in a shuffled order (interleaved, so drift and a noisy
neighbour hit all of them alike), as ``n`` ``with lock: pass`` blocks and ``n`` explicit
``acquire()``/``release()`` pairs. It prints the median ns per pair and the added cost over the
plain lock of the same kind (target: under 1 µs). Printed, never asserted.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "python"))

from aether_perf.locks import InstrumentedLock, InstrumentedRLock, LockRegistry


def with_loop(lock: object, n: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(n):
        with lock:  # type: ignore[attr-defined]
            pass
    return (time.perf_counter_ns() - start) / n


def call_loop(lock: object, n: int) -> float:
    acquire = lock.acquire  # type: ignore[attr-defined]
    release = lock.release  # type: ignore[attr-defined]
    start = time.perf_counter_ns()
    for _ in range(n):
        acquire()
        release()
    return (time.perf_counter_ns() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--n", type=int, default=200_000)
    args = parser.parse_args()
    registry = LockRegistry()
    locks = {
        "threading.Lock": threading.Lock(),
        "InstrumentedLock": InstrumentedLock("bench", registry=registry),
        "threading.RLock": threading.RLock(),
        "InstrumentedRLock": InstrumentedRLock("bench-r", registry=registry),
    }
    loops: dict[str, Callable[[object, int], float]] = {"with": with_loop, "acquire/release": call_loop}
    results: dict[tuple[str, str], list[float]] = {(lk, lp): [] for lk in locks for lp in loops}
    variants = list(results)
    for _ in range(args.rounds):
        random.shuffle(variants)
        for lock_name, loop_name in variants:
            results[(lock_name, loop_name)].append(loops[loop_name](locks[lock_name], args.n))
    med = {key: statistics.median(values) for key, values in results.items()}
    version = sys.version.split()[0]
    print(f"Python {version}, {args.rounds} interleaved rounds x {args.n:,} pairs; median ns per pair")
    print(f"{'variant':<22}{'loop':<17}{'ns/pair':>9}{'added ns':>10}{'ratio':>7}")
    for lock_name in locks:
        base = "threading.RLock" if "RLock" in lock_name else "threading.Lock"
        for loop_name in loops:
            value, ref = med[(lock_name, loop_name)], med[(base, loop_name)]
            print(f"{lock_name:<22}{loop_name:<17}{value:>9.0f}{value - ref:>10.0f}{value / ref:>7.2f}")


if __name__ == "__main__":
    main()
