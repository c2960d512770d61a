"""What `aether diagnose` costs the program it runs: the chapter's example under each recorder set.

    python bench/diagnose_overhead.py [--rounds 5] [--check 2000]

Runs examples/chapter_problems.py (one million appends, an O(n^2) check over --check items, four
threads taking one lock 1,000 times in all, each time hashing 2 MiB under it) in a fresh process
per measurement, timed inside that process around ``main()`` only: with no recorder, under the
Sampler (cpu mode, 1 ms), under the Sampler plus the recorders diagnose adds to its sampled runs
(lock, I/O and scheduling tracking as in cli/tracking.py, and the counters), and under the
Sampler plus the AllocationTracker sampled at 64 KiB (diagnose's default), sampled at 512 KiB, and
exact. Configurations are interleaved (every round runs each once, in a new random order). Prints
the median time of each and its ratio to the unrecorded median. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from sampler_overhead import child_env  # noqa: E402

CHILD = """\
import contextlib, io, json, sys, time
sys.path.insert(0, {examples!r})
import chapter_problems
config = {config!r}
sampler = tracker = None
if config != "none":
    from aether_native import AllocationTracker, Sampler
    sampler = Sampler(interval="1ms", mode="cpu")
    if config.startswith("sampled"):
        tracker = AllocationTracker(mode="sampled", sample_rate=config.split("-")[1])
    elif config == "exact":
        tracker = AllocationTracker(mode="exact")
trackers = counters = None
if config == "recorders":
    from aether_native.cli.tracking import Trackers
    from aether_native.counters import Counters
    trackers = Trackers(locks=True, io=True, sched=True)
    counters = Counters()
if tracker: tracker.start()
if sampler: sampler.start()
start = time.perf_counter()
if trackers: trackers.__enter__()
if counters: counters.start()
with contextlib.redirect_stdout(io.StringIO()):
    chapter_problems.main(["--check", str({check})])
if counters: counters.stop()
if trackers: trackers.__exit__(None, None, None)
elapsed = time.perf_counter() - start
if sampler: sampler.stop()
if tracker: tracker.stop()
print("RESULT " + json.dumps(elapsed))
"""

CONFIGS = ("none", "sampler", "recorders", "sampled-64KiB", "sampled-512KiB", "exact")


def measure(config: str, check: int) -> float:
    code = CHILD.format(examples=str(ROOT / "examples"), config=config, check=check)
    done = subprocess.run(
        [sys.executable, "-c", code], env=child_env(), capture_output=True, text=True, timeout=600, check=True
    )
    line = next(t for t in done.stdout.splitlines() if t.startswith("RESULT "))
    return float(json.loads(line.removeprefix("RESULT ")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--check", type=int, default=2000)
    args = parser.parse_args()
    times: dict[str, list[float]] = {c: [] for c in CONFIGS}
    for round_ in range(args.rounds):
        order = list(CONFIGS)
        random.shuffle(order)
        for config in order:
            times[config].append(measure(config, args.check))
        print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)
    base = statistics.median(times["none"])
    version = sys.version.split()[0]
    print(f"chapter_problems.py --check {args.check}, {args.rounds} rounds, medians (Python {version})")
    print(f"{'recorders':<30} {'median s':>9} {'ratio':>7}")
    labels = {
        "none": "none",
        "sampler": "sampler (cpu, 1ms)",
        "recorders": "sampler + locks/io/sched/ctrs",
        "sampled-64KiB": "sampler + sampled 64KiB",
        "sampled-512KiB": "sampler + sampled 512KiB",
        "exact": "sampler + exact",
    }
    for config in CONFIGS:
        med = statistics.median(times[config])
        print(f"{labels[config]:<30} {med:>9.3f} {med / base:>6.2f}x")


if __name__ == "__main__":
    main()
