"""The chapter's challenge 3 in Python: three performance problems for `aether diagnose` to find.

    python examples/chapter_problems.py [--items N] [--check N] [--threads T] [--rounds R] [--block-kib K]

1. `build`: a list grown by one million `append` calls in a loop (about a hundred reallocations
   that copy the array as it grows).
2. `has_duplicates`: an O(n^2) duplicate check over the first `--check` items (every pair compared).
3. `checksum_blocks`: a lock taken a thousand times in a hot loop across threads (4 threads x 250
   rounds), held across the work: each round hashes a 2 MiB block while holding the lock, so the
   threads wait for each other (a few ms per acquisition) instead of hashing in parallel
   (hashlib releases the GIL for large buffers).

examples/chapter_fixed.py does the same work the fast way.
"""

from __future__ import annotations

import argparse
import hashlib
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


def checksum_blocks(threads: int, rounds: int, block_kib: int) -> int:
    lock = threading.Lock()  # problem 3: one lock, taken in every round by every thread
    digests: dict[tuple[int, int], bytes] = {}
    block = bytes(block_kib * 1024)

    def work(k: int) -> None:
        for i in range(rounds):
            with lock:  # held across the hashing: the other threads wait
                h = hashlib.sha256(f"{k}:{i}".encode())
                h.update(block)
                digests[k, i] = h.digest()

    workers = [threading.Thread(target=work, args=(k,), name=f"worker-{k}") for k in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return len(digests)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--check", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=250, help="rounds per thread")
    parser.add_argument("--block-kib", type=int, default=2048, help="KiB hashed per round")
    args = parser.parse_args(argv)
    data = build(args.items)
    duplicates = has_duplicates(data[: args.check])
    blocks = checksum_blocks(args.threads, args.rounds, args.block_kib)
    print(f"items={len(data)} duplicates={duplicates} blocks={blocks}")


if __name__ == "__main__":
    main()
