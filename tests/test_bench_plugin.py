"""The pytest plugin (``--aether-bench``, fixture ``aether_bench``), run by pytester in a
subprocess on a test file whose two benchmarks differ by a known factor (``spin(3000)`` does 3x
the loop of ``spin(1000)``)."""

from __future__ import annotations

import json
import os

import jsonschema
import pytest
from aether_perf.bench.schema import RESULTS_SCHEMA
from workloads import child_env

pytest_plugins = ("pytester",)

TESTS = """
def spin(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def test_small(aether_bench):
    assert aether_bench(spin, 1000) == spin(1000)


def test_large(aether_bench):
    assert aether_bench(spin, n=3000) == spin(3000)


def test_plain():
    assert True
"""

PLUGIN = ("-p", "aether_perf.bench.pytest_plugin", "-p", "no:cacheprovider")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in child_env().items():
        if os.environ.get(key) != value:
            monkeypatch.setenv(key, value)


@pytest.mark.usefixtures("env")
def test_measures_saves_and_writes_json(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_spin=TESTS)
    done = pytester.runpytest_subprocess(
        *PLUGIN,
        "--aether-bench",
        "--aether-bench-values",
        "5",
        "--aether-bench-target",
        "2ms",
        "--aether-bench-save",
        "first",
        "--aether-bench-json",
        "out.json",
    )
    done.assert_outcomes(passed=3)
    done.stdout.fnmatch_lines(["*aether benchmarks*", "*test_small*", "*test_large*", "saved as 'first'*"])
    document = json.loads((pytester.path / "out.json").read_text())
    jsonschema.validate(document, RESULTS_SCHEMA)
    by_id = {b["id"]: b for b in document["benchmarks"]}
    assert sorted(by_id) == ["test_large", "test_small"]
    assert document["settings"]["in_process"] is True

    def running(bench: dict[str, object]) -> float:
        """Median running time per loop (value minus its run-queue wait): one process on a busy
        machine has no other way to separate the benchmark from its neighbours."""
        (process,) = bench["processes"]  # type: ignore[misc]
        for value, wait, run in zip(
            process["values"], process["run_delay_ns"], process["running"], strict=True
        ):
            assert run == pytest.approx(value - max(wait, 0) * 1e-9 / bench["loops"])  # type: ignore[operator]
        return sorted(process["running"])[len(process["running"]) // 2]  # type: ignore[no-any-return]

    for bench in by_id.values():
        (process,) = bench["processes"]
        assert len(process["values"]) == len(process["run_delay_ns"]) == 5
        # calibrated: one value (loops x time per loop) lasts about the 2ms target
        assert 0.001 <= bench["loops"] * running(bench) <= 0.004
    ratio = running(by_id["test_large"]) / running(by_id["test_small"])
    assert 2.0 < ratio < 4.5, ratio
    saved = json.loads((pytester.path / ".aether-bench" / "first.json").read_text())
    assert saved["name"] == "first" and len(saved["benchmarks"]) == 2


@pytest.mark.usefixtures("env")
def test_without_the_option_the_function_runs_once(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_once="""
        calls = []

        def test_once(aether_bench):
            aether_bench(calls.append, 1)
            assert calls == [1]
        """
    )
    done = pytester.runpytest_subprocess(*PLUGIN)
    done.assert_outcomes(passed=1)
    assert "aether benchmarks" not in done.stdout.str()
    assert not (pytester.path / ".aether-bench").exists()


@pytest.mark.usefixtures("env")
def test_bad_save_name_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x():\n    pass\n")
    done = pytester.runpytest_subprocess(*PLUGIN, "--aether-bench", "--aether-bench-save", "../x")
    assert done.ret == pytest.ExitCode.USAGE_ERROR
    assert "not a valid name" in done.stderr.str()
