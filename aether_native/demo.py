"""The bundled demo workload: `aether profile --demo` (or `python -m aether_native.demo`).

About 2.5 s of pure-Python work whose CPU shares are known by construction: the main thread spends
its CPU time 60 / 30 / 10 % in `crunch_numbers`, `parse_records` and `format_report` (each runs
until its own CPU-time budget is used, measured with `time.thread_time`, interleaved over several
rounds), while a second thread, `background-poller`, mostly sleeps and does a little `checksum`
work (it shows in wall mode, barely in cpu mode).
"""

from __future__ import annotations

import threading
import time

#: CPU seconds per round for each function; their ratio is the 60/30/10 split.
BUDGETS = {"crunch_numbers": 0.12, "parse_records": 0.06, "format_report": 0.02}
ROUNDS = 12


def crunch_numbers(budget: float) -> int:
    """Integer arithmetic: sum of squares modulo a prime (the 60 % share)."""
    deadline = time.thread_time() + budget
    total = 0
    while time.thread_time() < deadline:
        for i in range(2000):
            total = (total + i * i) % 1_000_003
    return total


def parse_records(budget: float) -> int:
    """String splitting and int parsing (the 30 % share)."""
    deadline = time.thread_time() + budget
    line = ",".join(str(n) for n in range(40))
    count = 0
    while time.thread_time() < deadline:
        for _ in range(50):
            count += sum(map(int, line.split(",")))
    return count


def format_report(budget: float) -> int:
    """String formatting (the 10 % share)."""
    deadline = time.thread_time() + budget
    size = 0
    while time.thread_time() < deadline:
        for i in range(200):
            size += len(f"{i:>8}|{i * 0.5:10.3f}|{hex(i):>6}")
    return size


def checksum(data: bytes) -> int:
    """A little work for the background thread."""
    value = 0
    for byte in data:
        value = (value * 31 + byte) & 0xFFFFFFFF
    return value


def background_poller(stop: threading.Event) -> None:
    """Wake every 50 ms, do ~1 ms of work, sleep again."""
    data = bytes(range(256)) * 8
    while not stop.wait(0.05):
        checksum(data)


def main() -> int:
    stop = threading.Event()
    poller = threading.Thread(target=background_poller, args=(stop,), name="background-poller")
    poller.start()
    results = {name: 0 for name in BUDGETS}
    started = time.perf_counter()
    try:
        for _ in range(ROUNDS):
            results["crunch_numbers"] ^= crunch_numbers(BUDGETS["crunch_numbers"])
            results["parse_records"] ^= parse_records(BUDGETS["parse_records"])
            results["format_report"] ^= format_report(BUDGETS["format_report"])
    finally:
        stop.set()
        poller.join()
    elapsed = time.perf_counter() - started
    shares = ", ".join(f"{name} {BUDGETS[name] / sum(BUDGETS.values()):.0%}" for name in BUDGETS)
    print(f"demo: {ROUNDS} rounds in {elapsed:.2f} s (expected CPU shares: {shares})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
