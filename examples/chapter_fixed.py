"""The same work as examples/chapter_problems.py, done the fast way.

    python examples/chapter_fixed.py [--items N] [--check N] [--threads T] [--rounds R] [--block-kib K]

1. `build`: `list(range(...))` sizes the list once (one allocation, no growth reallocations).
2. `has_duplicates`: a set: O(n).
3. `checksum_blocks`: each thread hashes its blocks without the lock (in parallel: hashlib
   releases the GIL) and takes the lock once to merge its digests.
"""

from __future__ import annotations

import argparse
import hashlib
import threading


def build(count: int) -> list[int]:
    return list(range(0, count * 7, 7))


def has_duplicates(data: list[int]) -> bool:
    return len(set(data)) != len(data)


def checksum_blocks(threads: int, rounds: int, block_kib: int) -> int:
    lock = threading.Lock()
    digests: dict[tuple[int, int], bytes] = {}
    block = bytes(block_kib * 1024)

    def work(k: int) -> None:
        local = {}
        for i in range(rounds):
            h = hashlib.sha256(f"{k}:{i}".encode())
            h.update(block)
            local[k, i] = h.digest()
        with lock:
            digests.update(local)

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
