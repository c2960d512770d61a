"""The pytest plugin (aether_native.pytest_plugin), driven through pytester on generated test files.

Ground truth: ``grow()`` holds a 20 MiB bytearray for 50 ms and frees it (a 20 MiB peak, nothing
left); ``hoard()`` keeps 2,048 bytearrays of 1 KiB in a module-level list (4,097 blocks, ~2.1 MB). Limits on
either side of those numbers must fail or pass, failures must name the function, and bad limits
must error the test in setup with a one-line message.
"""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

import pytest
from workloads import child_env

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = "aether_native.pytest_plugin"

HEADER = """\
import json
import time

import pytest

HELD = []


def grow():
    block = bytearray(20 * 2**20)
    time.sleep(0.05)
    del block


def hoard():
    for _ in range(2048):
        HELD.append(bytearray(1024))


def tidy():
    table = {i: str(i) for i in range(2000)}
    return len(json.dumps(table))
"""


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    # Load the plugin explicitly: the source tree is not installed, so its entry point may not be.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    path = child_env().get("PYTHONPATH")  # the in-place build and python/, absolute
    if path:
        monkeypatch.setenv("PYTHONPATH", path)

    def go(body: str) -> pytest.RunResult:
        pytester.makepyfile(test_target=HEADER + body)
        return pytester.runpytest_subprocess("-p", PLUGIN, "-p", "no:cacheprovider", "-q")

    return go


def test_limit_memory_fails_over_and_passes_under(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        """
@pytest.mark.limit_memory("10 MiB")
def test_over():
    grow()


@pytest.mark.limit_memory("40MiB")
def test_under():
    grow()


def test_unmarked_runs_untracked():
    from aether_native.memory import AllocationTracker  # the plugin holds no tracker here

    with AllocationTracker():
        grow()
"""
    )
    result.assert_outcomes(passed=2, failed=1)
    out = result.stdout.str()
    assert "limit_memory: the test's heap peaked at 20MiB" in out
    assert "over the limit of 10MiB" in out
    stacks = out[out.index("Top allocating stacks") :]
    first = stacks.splitlines()[1]
    assert "grow (test_target.py:" in first and "test_over" in first and "20MiB" in first


def test_limit_leaks_fails_over_and_passes_under(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        """
@pytest.mark.limit_leaks("1 MiB")
def test_leaks_too_much():
    hoard()


@pytest.mark.limit_leaks("4 MiB")
def test_leaks_within():
    hoard()


@pytest.mark.limit_leaks("0", warmup=1)
def test_clean_code_leaks_nothing():
    assert tidy() > 0
"""
    )
    result.assert_outcomes(passed=2, failed=1)
    out = result.stdout.str()
    assert "limit_leaks: the test leaked 2" in out and "over the limit of 1MiB" in out
    # 2,048 bytearray objects and their 1 KiB buffers, plus the list's array.
    assert "in 4,097 blocks: hoard (test_target.py:17) <- test_leaks_too_much (test_target.py:" in out
    assert "test_leaks_within" not in out and "test_clean_code_leaks_nothing" not in out


def test_bad_limits_error_in_setup(run) -> None:  # type: ignore[no-untyped-def]
    result = run(
        """
@pytest.mark.limit_memory("ten megs")
def test_unparsable():
    pass


@pytest.mark.limit_memory("-1 MiB")
def test_negative():
    pass


@pytest.mark.limit_leaks()
def test_missing():
    pass


@pytest.mark.limit_leaks("1 MiB", warmup="twice")
def test_bad_warmup():
    pass


@pytest.mark.limit_memory("1 MiB", per_thread=True)
def test_unknown_argument():
    pass
"""
    )
    result.assert_outcomes(errors=5)
    out = result.stdout.str()
    assert "@pytest.mark.limit_memory: the limit_memory limit must be a size" in out
    assert "got 'ten megs'" in out and "got '-1 MiB'" in out
    assert "@pytest.mark.limit_leaks takes one limit" in out
    assert "warmup must be 0..100, got 'twice'" in out
    assert "unknown argument 'per_thread'" in out
    assert "Traceback" not in out


def test_registered_through_the_pytest11_entry_point() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert config["project"]["entry-points"]["pytest11"][PLUGIN] == PLUGIN
    try:
        dist = importlib.metadata.distribution("aether-native")
    except importlib.metadata.PackageNotFoundError:
        return  # the source tree, not installed: the declaration above is what install uses
    points = {ep.name: ep.value for ep in dist.entry_points if ep.group == "pytest11"}
    if points:  # an installation older than the entry point has none
        assert points[PLUGIN] == PLUGIN
