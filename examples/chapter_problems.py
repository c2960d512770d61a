"""The chapter's challenge 3 in Python: three performance problems for `aether diagnose` to find.

    python examples/chapter_problems.py [--items N] [--check N] [--threads T] [--rounds R]

1. `build`: a list grown by one million `append` calls in a loop (about a hundred reallocations
   that copy the array as it grows).
2. `has_duplicates`: an O(n^2) duplicate check over the first `--check` items (every pair compared).
3. `contended_counter`: a lock taken a thousand times per thread in a hot loop, across threads.

examples/chapter_fixed.py does the same work the fast way.
"""

from __future__ import annotations

import argparse
import threading


def build(count: int) -> list[int]:
    data = []
    for i in range(count):
        data.append(i * 7)  # problem 1: grown one item at a time
    return data


def has_duplicates(data: list[int]) -> bool:
    n = len(data)
    for i in range(n):
        for j in range(i + 1, n):  # problem 2: every pair, O(n^2)
            if data[i] == data[j]:
                return True
    return False


def contended_counter(threads: int, rounds: int) -> int:
    lock = threading.Lock()
    total = 0

    def work() -> None:
        nonlocal total
        for _ in range(rounds):
            with lock:  # problem 3: taken once per increment by every thread
                total += 1

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
