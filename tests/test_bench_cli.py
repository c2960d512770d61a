"""`aether bench` end to end: every test runs `python -m aether_native bench ...` in a subprocess
on benchmark files of known cost (``spin(1300)`` does 30% more of the same loop than
``spin(1000)``), and checks exit statuses, stderr lines, the saved store, the JSON (against its
schema), the markdown and the HTML files. The last test is the CI smoke run of the project's own
``bench/micro`` in quick mode (a check that it completes, not a timed gate)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import jsonschema
import pytest
from aether_perf.bench.schema import RESULTS_SCHEMA
from workloads import ROOT, child_env

ENV = child_env()
TIMEOUT = 300
FAST = ["--processes", "6", "--values", "3", "--target", "1ms"]

SPIN = """\
from aether_perf.bench import benchmark

def spin(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total
"""


def aether(args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aether_native", "bench", *args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def bench_file(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SPIN + textwrap.dedent(body), encoding="utf-8")
    return path


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("aether: error: "), done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


def test_save_then_compare_flags_the_slower_variant(tmp_path: Path) -> None:
    target = bench_file(tmp_path / "bench_work.py", "@benchmark\ndef work():\n    return spin(1000)\n")
    done = aether(
        [".", *FAST, "--save", "base", "--json", "base.json", "--markdown", "base.md"],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "work" in done.stdout and "median" in done.stdout
    assert "\x1b[" not in done.stdout  # piped: no colour
    saved = tmp_path / ".aether-bench" / "base.json"
    document = json.loads(saved.read_text())
    jsonschema.validate(document, RESULTS_SCHEMA)
    assert document["name"] == "base" and [b["id"] for b in document["benchmarks"]] == ["work"]
    process = document["benchmarks"][0]["processes"][0]
    assert len(process["values"]) == 3 and len(process["run_delay_ns"]) == 3
    jsonschema.validate(json.loads((tmp_path / "base.json").read_text()), RESULTS_SCHEMA)
    assert "| `work` |" in (tmp_path / "base.md").read_text()

    # The same benchmark, now 30% more work: a confirmed regression, exit 1.
    bench_file(target, "@benchmark\ndef work():\n    return spin(1300)\n")
    done = aether(
        [
            ".",
            "--processes",
            "8",
            *FAST[2:],
            "--compare",
            "base",
            "--fail-on-regression",
            "5%",
            "--json",
            "head.json",
            "--markdown",
            "head.md",
            "--html",
            "head.html",
        ],
        tmp_path,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "aether: regression: work" in done.stderr
    assert "regression" in done.stdout
    document = json.loads((tmp_path / "head.json").read_text())
    jsonschema.validate(document, RESULTS_SCHEMA)
    (row,) = document["comparison"]["benchmarks"]
    assert row["verdict"] == "regression" and row["ratio"] > 1.15 and row["ci_low"] > 1.05
    assert row["min_detectable"] is not None
    assert "**1 regression(s)**" in (tmp_path / "head.md").read_text()
    page = (tmp_path / "head.html").read_text()
    assert page.count('<svg class="dist"') == 1 and page.count('<svg class="history"') == 1
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")

    # Without --fail-on-regression the comparison is reported but the exit status is 0.
    done = aether([".", *FAST, "--compare", "base"], tmp_path)
    assert done.returncode == 0, done.stderr


def test_filter_selects_by_substring_and_glob(tmp_path: Path) -> None:
    bench_file(
        tmp_path / "bench" / "bench_two.py",
        """
        @benchmark
        def alpha_small():
            return spin(100)

        @benchmark
        def beta_small():
            return spin(100)
        """,
    )
    done = aether(["--filter", "alpha", *FAST, "--json", "out.json"], tmp_path)  # PATHS default: bench
    assert done.returncode == 0, done.stderr
    assert [b["id"] for b in json.loads((tmp_path / "out.json").read_text())["benchmarks"]] == ["alpha_small"]
    done = aether(["bench", "--filter", "*_small", *FAST, "--json", "-"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(b["id"] for b in json.loads(done.stdout)["benchmarks"]) == ["alpha_small", "beta_small"]


def test_bad_inputs_exit_2_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert "no benchmarks found" in one_error_line(aether(["empty"], tmp_path))
    assert "no such file or directory" in one_error_line(aether(["missing_dir"], tmp_path))
    bench_file(tmp_path / "bench_ok.py", "@benchmark\ndef ok():\n    return spin(10)\n")
    assert "no benchmark matches --filter 'zzz'" in one_error_line(aether([".", "--filter", "zzz"], tmp_path))
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"format": "aether-bench", "version": 1, "name": ')
    line = one_error_line(aether([".", "--compare", str(corrupt)], tmp_path))
    assert "corrupt.json" in line and "corrupt benchmark results" in line
    foreign = tmp_path / "foreign.json"
    foreign.write_text('{"benchmarks": []}')
    assert "not an aether benchmark results file" in one_error_line(
        aether([".", "--compare", str(foreign)], tmp_path)
    )
    assert "no saved run named 'nothing'" in one_error_line(aether([".", "--compare", "nothing"], tmp_path))
    assert "--fail-on-regression" in one_error_line(aether([".", "--fail-on-regression", "lots"], tmp_path))
    assert "not a valid name" in one_error_line(aether([".", "--save", "../escape"], tmp_path))
    assert "not allowed with" in one_error_line(
        aether([".", "--compare", "a", "--compare-ref", "HEAD"], tmp_path)
    )
    assert "no such file or directory" not in corrupt.read_text()  # the baseline was not overwritten
    for done in (aether(["empty"], tmp_path), aether([".", "--compare", str(corrupt)], tmp_path)):
        assert done.returncode == 2


def test_failing_benchmark_exits_1(tmp_path: Path) -> None:
    bench_file(tmp_path / "bench_bad.py", "@benchmark\ndef broken():\n    raise RuntimeError('boom')\n")
    done = aether(["."], tmp_path)
    assert done.returncode == 1
    assert "benchmark 'broken' failed" in one_error_line(done) and "RuntimeError: boom" in done.stderr


def test_baseline_from_another_machine_or_python_warns(tmp_path: Path) -> None:
    bench_file(tmp_path / "bench_w.py", "@benchmark\ndef w():\n    return spin(200)\n")
    assert aether([".", *FAST, "--save", "here"], tmp_path).returncode == 0
    document = json.loads((tmp_path / ".aether-bench" / "here.json").read_text())
    document["identity"]["machine_id"] = "elsewhere/Other CPU/64cpu"
    document["identity"]["python_version"] = "3.10.0"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(document))
    done = aether([".", *FAST, "--compare", str(other)], tmp_path)
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("aether: warning: ")]
    assert len(warnings) == 2, done.stderr
    assert "another machine (elsewhere/Other CPU/64cpu" in warnings[0]
    assert "CPython 3.10.0" in warnings[1]


def git(cwd: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True, capture_output=True
    )


def test_compare_ref_benchmarks_the_old_commit_in_the_same_run(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    target = bench_file(
        repo / "benchmarks" / "bench_work.py", "@benchmark\ndef work():\n    return spin(1000)\n"
    )
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "base")
    bench_file(target, "@benchmark\ndef work():\n    return spin(1300)\n")  # uncommitted: 30% slower
    args = ["benchmarks", "--processes", "8", "--values", "5", "--target", "500us"]
    done = aether(
        [*args, "--compare-ref", "HEAD", "--fail-on-regression", "5%", "--json", "../out.json"], repo
    )
    assert done.returncode == 1, done.stdout + done.stderr
    document = json.loads((tmp_path / "out.json").read_text())
    assert document["comparison"]["base"] == "HEAD"
    assert document["comparison"]["benchmarks"][0]["verdict"] == "regression"
    assert document["identity"]["git_dirty"] is True
    listed = subprocess.run(["git", "worktree", "list"], cwd=repo, capture_output=True, text=True).stdout
    assert len(listed.strip().splitlines()) == 1  # the temporary worktree is gone
    assert "is not a commit" in one_error_line(aether(["benchmarks", "--compare-ref", "nope"], repo))


def test_project_microbenchmarks_smoke(tmp_path: Path) -> None:
    """`.ci/run` smoke check: the project's own microbenchmarks complete in quick mode. (Run from
    a temporary directory: from the source tree, `python -m aether_native` would import the
    uncompiled source package instead of the installed one.)"""
    micro = ROOT / "bench" / "micro"
    if not micro.is_dir():
        pytest.fail("bench/micro is missing")
    done = aether([str(micro), "--quick"], tmp_path)
    assert done.returncode == 0, done.stderr
    for bench_id in ("sampler/workload_10khz", "alloc/exact", "export/pprof", "export/speedscope"):
        assert bench_id in done.stdout
