"""The same work as examples/chapter_problems.py, done the fast way.

    python examples/chapter_fixed.py [--items N] [--check N] [--threads T] [--rounds R]

1. `build`: `list(range(...))` sizes the list once (one allocation, no growth reallocations).
2. `has_duplicates`: a set: O(n).
3. `contended_counter`: each thread counts on its own and takes the lock once to add its total.
"""

from __future__ import annotations

import argparse
import threading


def build(count: int) -> list[int]:
    return list(range(0, count * 7, 7))


def has_duplicates(data: list[int]) -> bool:
    return len(set(data)) != len(data)


def contended_counter(threads: int, rounds: int) -> int:
    lock = threading.Lock()
    total = 0

    def work() -> None:
        nonlocal total
        local = 0
        for _ in range(rounds):
            local += 1
        with lock:
            total += local

    workers = [threading.Thread(target=work, name=f"worker-{k}") for k in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--check", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=1000)
    args = parser.parse_args(argv)
    data = build(args.items)
    duplicates = has_duplicates(data[: args.check])
    total = contended_counter(args.threads, args.rounds)
    print(f"items={len(data)} duplicates={duplicates} total={total}")


if __name__ == "__main__":
    main()
