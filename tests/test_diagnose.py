"""`aether diagnose`: the chapter's problems found at their lines, nothing on the fixed program.

Ground truth: examples/chapter_problems.py appends one million items to a list on the line marked
"problem 1" and compares every pair on the lines of `has_duplicates` ("problem 2"); the
super-linear check runs it at two sizes. examples/chapter_fixed.py does the same work without
them. Hand-built profiles whose line times grow exactly as n and n^2 pin the slope arithmetic.
(The lock problem, "problem 3", and the other recorders' sources: test_diagnose_concurrency.py.)
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from workloads import cli_env

ROOT = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("aether_perf") is None:
    sys.path.insert(0, str(ROOT / "python"))

from aether_perf.analysis.superlinear import loglog_slope, scaling, superlinear_findings  # noqa: E402
from aether_perf.diagnose import SOURCES, Evidence, diagnose, render_github, render_json  # noqa: E402
from aether_perf.errors import InvalidArgument  # noqa: E402
from aether_perf.model import Finding, Frame, Location, Profile, ProfileMeta, load  # noqa: E402

ENV = cli_env()
PROBLEMS = ROOT / "examples" / "chapter_problems.py"
FIXED = ROOT / "examples" / "chapter_fixed.py"
MS = 1_000_000
#: The lock part of the examples at 50 rounds per thread instead of 250: these tests are about the
#: other two problems, and the run stays short.
FEW_ROUNDS = ["--rounds", "50"]
SCALED = ["diagnose", "--format", "json", "--scale-arg", "1200,2400", "--"]


def aether(args: Sequence[str], cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aether_native", *args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=180,
        **kwargs,
    )


def marked_line(path: Path, marker: str) -> int:
    for number, text in enumerate(path.read_text().splitlines(), 1):
        if marker in text:
            return number
    raise AssertionError(f"{marker!r} not in {path}")


def function_lines(path: Path, name: str) -> range:
    lines = path.read_text().splitlines()
    start = next(i for i, t in enumerate(lines, 1) if t.startswith(f"def {name}("))
    end = next((i for i, t in enumerate(lines[start:], start + 1) if t and not t[0].isspace()), len(lines))
    return range(start, end)


def findings_of(stdout: str) -> list[Finding]:
    return [Finding.from_dict(item) for item in json.loads(stdout)["findings"]]


@pytest.fixture(scope="module")
def problems_report(tmp_path_factory: pytest.TempPathFactory) -> list[Finding]:
    cwd = tmp_path_factory.mktemp("problems")
    done = aether(
        [*SCALED, str(PROBLEMS), "--check", "{n}", *FEW_ROUNDS],
        cwd,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("items=1000000") == 3  # sampled at two sizes, then tracked; output intact
    return findings_of(done.stdout[done.stdout.index("{") :])


def test_growth_found_at_the_append_line(problems_report: list[Finding]) -> None:
    growth = [f for f in problems_report if f.rule == "alloc.growth"]
    assert len(growth) == 1, problems_report
    loc = growth[0].location
    assert loc is not None and Path(loc.file) == PROBLEMS and loc.function == "build"
    assert loc.line == marked_line(PROBLEMS, "problem 1")
    assert growth[0].severity == "warning" and growth[0].measured is not None and growth[0].measured >= 32
    assert growth[0].evidence["allocated_bytes"] > 8_000_000  # the array, copied as it grew


def test_quadratic_loop_found_in_has_duplicates(problems_report: list[Finding]) -> None:
    slow = [f for f in problems_report if f.rule == "complexity.superlinear"]
    assert len(slow) == 1, problems_report
    loc = slow[0].location
    assert loc is not None and Path(loc.file) == PROBLEMS and loc.function == "has_duplicates"
    assert loc.line in function_lines(PROBLEMS, "has_duplicates")
    assert slow[0].measured is not None and 1.6 <= slow[0].measured <= 2.5
    assert "likely O(n^2)" in slow[0].message
    assert slow[0].evidence["sizes"] == [1200.0, 2400.0]


def test_nothing_reported_on_the_fixed_program(tmp_path: Path) -> None:
    done = aether(
        [*SCALED, str(FIXED), "--check", "{n}", *FEW_ROUNDS],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    found = findings_of(done.stdout[done.stdout.index("{") :])
    problems = [f for f in found if f.severity != "info"]
    assert problems == [], problems
    assert not [f for f in found if f.rule in ("alloc.growth", "complexity.superlinear")]


SCALING = """\
import sys

def linear(n):
    total = 0
    for i in range(n * 1000):
        total += i
    return total

def quadratic(n):
    total = 0
    for i in range(n):
        for j in range(n):
            total += j
    return total

n = int(sys.argv[1])
linear(n)
quadratic(n)
"""


def test_superlinear_tells_linear_from_quadratic(tmp_path: Path) -> None:
    script = tmp_path / "scaling.py"
    script.write_text(SCALING)
    done = aether(
        [
            "diagnose",
            "--memory",
            "off",
            "--format",
            "json",
            "--scale-arg",
            "1500,4500",
            "--",
            "scaling.py",
            "{n}",
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    found = [f for f in findings_of(done.stdout) if f.rule == "complexity.superlinear"]
    assert [f.location.function for f in found if f.location] == ["quadratic"]
    assert found[0].location is not None and found[0].location.line in (11, 12, 13)


def synthetic(n: int, linear_ms: float, quadratic_ms: float) -> Profile:
    frames = [Frame("lin", "/src/app.py", 5, 4), Frame("quad", "/src/app.py", 9, 8)]
    samples = [(0, int(linear_ms * MS / 20))] * 20 + [(1, int(quadratic_ms * MS / 20))] * 20
    return Profile(
        frames,
        [(0,), (1,)],
        {},
        stack=[s for s, _ in samples],
        tid=[1] * len(samples),
        time_ns=list(range(len(samples))),
        weight_ns=[w for _, w in samples],
        flags=[0] * len(samples),
        meta=ProfileMeta("cpu", 0.001, 0.0, 1.0, "3.11.7", len(samples), 0, "app.py"),
    )


def test_slope_arithmetic_on_exact_profiles() -> None:
    runs = [(n, synthetic(n, n / 10, n * n / 10_000)) for n in (1000, 2000, 4000)]
    fitted = {s.function: s.slope for s in scaling(runs)}
    assert fitted["lin"] == pytest.approx(1.0, abs=1e-3) and fitted["quad"] == pytest.approx(2.0, abs=1e-3)
    found = superlinear_findings(runs)
    assert [(f.location.function, f.location.line) for f in found if f.location] == [("quad", 9)]
    assert found[0].severity == "error"  # it is most of the largest run
    assert loglog_slope([1, 10], [3, 3000]) == pytest.approx(3.0)
    with pytest.raises(InvalidArgument):
        superlinear_findings(runs[:1])
    with pytest.raises(InvalidArgument):
        superlinear_findings([runs[0], (1000, runs[1][1])])


def test_pipeline_and_renderers() -> None:
    assert list(SOURCES)[:3] == ["hotspots", "superlinear", "allocations"]
    assert diagnose(Evidence()) == []
    with pytest.raises(InvalidArgument):
        diagnose(Evidence(), sources=["nope"])
    finding = Finding(
        "alloc.growth",
        "growth",
        "warning",
        "50% grew, a:b",
        measured=40,
        threshold=32,
        suggestions=("preallocate",),
        location=Location("dir/a,b.py", 7, "f"),
    )
    text = render_github([finding], root="/nowhere")
    assert text == (
        "::warning file=dir/a%2Cb.py,line=7,title=growth [alloc.growth]::50%25 grew, a:b%0ATry: preallocate\n"
    )
    assert Finding.from_dict(json.loads(render_json([finding]))["findings"][0]) == finding


def test_input_files_and_status(tmp_path: Path) -> None:
    script = tmp_path / "scaling.py"
    script.write_text(SCALING)
    for n in (1500, 4500):
        assert aether(["profile", "-q", "-o", f"s{n}.aprof", "scaling.py", str(n)], tmp_path).returncode == 0
    # the linear function is judged too (enough samples in both runs), and its slope is about 1
    fitted = {
        s.function: s.slope for s in scaling([(n, load(tmp_path / f"s{n}.aprof")) for n in (1500, 4500)])
    }
    assert 0.5 <= fitted["linear"] <= 1.5 and 1.5 <= fitted["quadratic"] <= 2.6, fitted
    done = aether(
        [
            "diagnose",
            "--format",
            "json",
            "--scale-arg",
            "1500,4500",
            "-i",
            "s1500.aprof",
            "-i",
            "s4500.aprof",
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert [
        f.location.function
        for f in findings_of(done.stdout)
        if f.rule == "complexity.superlinear" and f.location
    ] == ["quadratic"]
    (tmp_path / "fail.py").write_text("import sys\nsys.exit(3)\n")
    assert aether(["diagnose", "--memory", "off", "fail.py"], tmp_path).returncode == 3
    (tmp_path / "grow.py").write_text("data = []\nfor i in range(300_000):\n    data.append(i)\n")
    fail_on = aether(["diagnose", "--fail-on", "warning", "grow.py"], tmp_path)
    assert fail_on.returncode == 1 and "alloc.growth" in fail_on.stdout
    assert aether(["diagnose", "--fail-on", "error", "grow.py"], tmp_path).returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["diagnose"], "nothing to diagnose"),
        (["diagnose", "--scale-arg", "100,200", "--", "ok.py", "5"], "needs {n}"),
        (["diagnose", "--scale-arg", "100", "--", "ok.py", "{n}"], "two or more positive sizes"),
        (["diagnose", "--scale-arg", "100,100", "--", "ok.py", "{n}"], "must differ"),
        (["diagnose", "--input", "missing.aprof"], "no such file"),
        (["diagnose", "--input", "ok.py"], "ok.py"),
        (["diagnose", "--input", "ok.aprof", "ok.py"], "not both"),
        (["diagnose", "--scale-arg", "1,2", "--input", "ok.aprof"], "2 sizes but 1 profile"),
        (["diagnose", "--format", "xml", "ok.py"], "invalid choice"),
        (["diagnose", "--sarif", "ok.py", "ok.py"], "ok.py"),
    ],
)
def test_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "ok.py").write_text(textwrap.dedent("print('ran')\n"))
    if "ok.aprof" in args:
        assert aether(["profile", "-q", "-o", "ok.aprof", "ok.py"], tmp_path).returncode == 0
    done = aether(args, tmp_path)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aether: error: ") and message in lines[0], lines
    assert "ran" not in done.stdout
    assert (tmp_path / "ok.py").read_text() == "print('ran')\n"


def test_save_then_annotate(tmp_path: Path) -> None:
    (tmp_path / "grow.py").write_text("data = []\nfor i in range(300_000):\n    data.append(i)\n")
    done = aether(["diagnose", "--memory", "exact", "--save", "run", "--format", "json", "grow.py"], tmp_path)
    assert done.returncode == 0, done.stderr
    found = [
        (f.rule, f.location.line) for f in findings_of(done.stdout) if f.location and f.severity != "info"
    ]
    assert found == [("alloc.growth", 3)]
    assert "run.aprof" in done.stderr and "run.heap.aprof" in done.stderr
    shown = aether(["annotate", "run.aprof", "--heap", "run.heap.aprof"], tmp_path)
    assert shown.returncode == 0, shown.stderr
    line3 = next(t for t in shown.stdout.splitlines() if t.lstrip().startswith("3 "))
    assert "MiB" in line3 and "data.append(i)" in line3
    again = aether(["diagnose", "--save", "run", "--input", "run.aprof"], tmp_path)
    assert again.returncode == 2 and "--save" in again.stderr
