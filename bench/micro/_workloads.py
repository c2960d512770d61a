"""Shared inputs of the project's microbenchmarks (the file name keeps it out of discovery)."""

from __future__ import annotations

import random


def spin(n: int) -> int:
    """Pure-Python integer work, a fixed amount per call: the thing a sampler interrupts."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def synthetic_profile(samples: int = 2_000, functions: int = 200, depth: int = 12, seed: int = 1) -> object:
    """A cpu-mode Profile of ``samples`` samples over ``functions`` frames, stacks ``depth`` deep,
    two threads: big enough that an exporter's per-sample cost dominates its fixed cost."""
    from aether_perf import Frame, Profile, ProfileMeta, ThreadInfo

    rng = random.Random(seed)
    frames = [Frame(f"module.func_{i}", f"pkg/mod_{i % 17}.py", 10 + i, 5 + i) for i in range(functions)]
    stacks = [tuple(rng.randrange(functions) for _ in range(rng.randint(2, depth))) for _ in range(500)]
    stack = [rng.randrange(len(stacks)) for _ in range(samples)]
    tids = [101 if i % 3 else 202 for i in range(samples)]
    times = [i * 1_000_000 for i in range(samples)]
    return Profile(
        frames,
        stacks,
        {101: ThreadInfo(101, "MainThread"), 202: ThreadInfo(202, "worker")},
        stack=stack,
        tid=tids,
        time_ns=times,
        weight_ns=[1_000_000] * samples,
        flags=[0] * samples,
        meta=ProfileMeta("cpu", 0.001, 1_790_000_000.0, samples / 1000, "3.12.1", samples, 0, "bench"),
    )
