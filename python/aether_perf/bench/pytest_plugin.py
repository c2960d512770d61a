"""A pytest plugin: the ``aether_bench`` fixture, measured with ``pytest --aether-bench``.

    def test_parse(aether_bench):
        result = aether_bench(parse, "some text")   # returns parse's result
        assert result == ...

Without ``--aether-bench`` the fixture calls the function once (the test still checks its result,
quickly). With it, the function is calibrated to ``--aether-bench-target`` per value, warmed up
and measured ``--aether-bench-values`` times, with the same noise covariates and re-runs as the
worker processes of ``aether bench``. Results are one run (a :class:`Suite`), printed at the end
of the session, saved in the same store as ``aether bench --save`` (``--aether-bench-save NAME``)
and written as JSON (``--aether-bench-json``).

Unlike ``aether bench``, everything runs inside the pytest process: one process per benchmark,
so the interval of the median reflects that process's noise only (process-level effects such as
hash seed and layout are not averaged out). Registered through the ``pytest11`` entry point.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from typing import Any

import pytest

from aether_perf.bench import calibrate, noise
from aether_perf.bench.results import BenchmarkResult, ProcessRun

_RESULTS = pytest.StashKey[list[BenchmarkResult]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("aether-bench", "aether micro-benchmarks (the aether_bench fixture)")
    group.addoption("--aether-bench", action="store_true", help="measure the aether_bench fixtures")
    group.addoption(
        "--aether-bench-values", type=int, default=10, metavar="N", help="values per benchmark (10)"
    )
    group.addoption(
        "--aether-bench-target", default="10ms", metavar="DURATION", help="one value's duration (10ms)"
    )
    group.addoption("--aether-bench-save", metavar="NAME", help="save the run in the store as NAME")
    group.addoption(
        "--aether-bench-store", default=".aether-bench", metavar="DIR", help="the store (.aether-bench)"
    )
    group.addoption("--aether-bench-json", metavar="PATH", help="write the run as JSON")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_RESULTS] = []
    name = config.getoption("--aether-bench-save", None)
    if name:
        from aether_perf.bench.store import BenchStore

        try:
            BenchStore.check_name(name)
        except ValueError as exc:
            raise pytest.UsageError(str(exc)) from None


class BenchFixture:
    """``aether_bench(func, *args, **kwargs)``: measure ``func(*args, **kwargs)``; return its result."""

    def __init__(
        self, node_id: str, name: str, enabled: bool, values: int, target: float, sink: list[BenchmarkResult]
    ) -> None:
        self.node_id = node_id
        self.name = name
        self.enabled = enabled
        self.values = values
        self.target = target
        self._sink = sink
        self.result: BenchmarkResult | None = None

    def __call__(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.result is not None:
            raise RuntimeError("aether_bench measures one function per test")
        returned = func(*args, **kwargs)
        if not self.enabled:
            return returned

        def call() -> object:
            return func(*args, **kwargs)

        loops = calibrate.calibrate(call, self.target, run_delay_ns=noise.run_delay_ns)
        calibrate.time_loops(call, loops)  # warm-up value
        values: list[float] = []
        running: list[float] = []
        waits: list[int] = []
        switches: list[int] = []
        dirty: list[bool] = []
        reruns = 0

        def body() -> None:
            calibrate.time_loops(call, loops)

        while len(values) < self.values:
            duration, wait, nivcsw = noise.timed(body)
            bad = noise.contaminated(wait, duration, 0.02)
            if bad and reruns < 2 * self.values:
                reruns += 1
                continue
            values.append(duration / loops)
            running.append(noise.running_seconds(duration, wait) / loops)
            waits.append(wait)
            switches.append(nivcsw)
            dirty.append(bad)
        seed = os.environ.get("PYTHONHASHSEED", "0")
        run = ProcessRun(
            int(seed) if seed.isdigit() else 0, values, waits, switches, dirty, reruns, None, running
        )
        self.result = BenchmarkResult(self.name, self.name, None, self.node_id.split("::")[0], loops, [run])
        self._sink.append(self.result)
        return returned


@pytest.fixture
def aether_bench(request: pytest.FixtureRequest) -> BenchFixture:
    """Measure a function: ``aether_bench(func, *args)`` (see the module doc)."""
    from aether_perf.units import parse_duration

    config = request.config
    target = parse_duration(config.getoption("--aether-bench-target"), name="--aether-bench-target")
    return BenchFixture(
        request.node.nodeid,
        request.node.name,
        bool(config.getoption("--aether-bench")),
        max(1, config.getoption("--aether-bench-values")),
        target,
        config.stash[_RESULTS],
    )


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    results = config.stash.get(_RESULTS, [])
    if not results:
        return
    from aether_perf.bench.report_text import render_suite
    from aether_perf.bench.runner import Settings, make_suite
    from aether_perf.bench.store import BenchStore, write_file

    settings = Settings(values=config.getoption("--aether-bench-values"), processes=2)
    name = config.getoption("--aether-bench-save") or "pytest"
    suite = make_suite(name, results, settings, config.rootpath)
    suite.settings.update({"processes": 1, "in_process": True, "runner": "pytest"})
    text = io.StringIO()
    render_suite(suite, text, color=False)
    terminalreporter.write_sep("-", "aether benchmarks")
    terminalreporter.write(text.getvalue())
    path = config.getoption("--aether-bench-json")
    if path:
        write_file(suite, path)
    if config.getoption("--aether-bench-save"):
        saved = BenchStore(config.getoption("--aether-bench-store")).save(suite)
        terminalreporter.write_line(f"saved as {name!r} in {saved}")
