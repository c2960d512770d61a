"""A micro-benchmark framework with a regression gate that holds on a noisy machine.

    from aether_perf.bench import benchmark, group

    @benchmark
    def parse_small(): ...

    with group("vector ops", setup=lambda: list(range(100_000))) as g:
        g.add("squares", lambda data: [x * x for x in data])

``aether bench PATHS`` (or :func:`run_benchmarks`) runs them in fresh worker processes;
:func:`compare` decides what regressed. Importing this package loads only the registry (workers
and benchmark files import it); the rest loads on first use.
"""

from __future__ import annotations

from typing import Any

from aether_perf.bench.registry import Benchmark, benchmark, group

TYPE_CHECKING = False
if TYPE_CHECKING:
    from aether_perf.bench.comparison import Comparison, ComparisonReport, compare
    from aether_perf.bench.results import BenchmarkResult, Suite
    from aether_perf.bench.runner import QUICK, Settings, run_benchmarks
    from aether_perf.bench.store import BenchStore, load_file

_LAZY = {
    "Comparison": "comparison",
    "ComparisonReport": "comparison",
    "compare": "comparison",
    "BenchmarkResult": "results",
    "Suite": "results",
    "QUICK": "runner",
    "Settings": "runner",
    "run_benchmarks": "runner",
    "BenchStore": "store",
    "load_file": "store",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aether_perf.bench' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"aether_perf.bench.{module}"), name)


__all__ = [
    "QUICK",
    "BenchStore",
    "Benchmark",
    "BenchmarkResult",
    "Comparison",
    "ComparisonReport",
    "Settings",
    "Suite",
    "benchmark",
    "compare",
    "group",
    "load_file",
    "run_benchmarks",
]
