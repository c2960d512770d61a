"""`aether memcheck` end to end: every test runs `python -m aether_native ...` in a subprocess.

Ground truth: the target leaks 5,000 bytes objects of a known size from `leaky()` (kept in a global
list) and churns others it frees; the leak report must name `leaky` with 5,000 x sys.getsizeof of
one such object, within 2%.
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

from workloads import cli_env

ROOT = Path(__file__).resolve().parents[1]


if importlib.util.find_spec("aether_perf") is None:
    sys.path.insert(0, str(ROOT / "python"))

from aether_perf.analysis.heap import leak_report  # noqa: E402
from aether_perf.model import load_heap  # noqa: E402

ENV = cli_env()
TIMEOUT = 120
COUNT = 5000

LEAKY_SCRIPT = """\
import json, sys

LEAKED = []

def leaky(count, n):
    for _ in range(count):
        LEAKED.append(b"x" * n)

def churn(count, n):
    for _ in range(count):
        junk = [b"y" * n for _ in range(10)]
        del junk

if __name__ == "__main__":
    churn(1000, 1024)
    leaky(int(sys.argv[1]), 1024)
    churn(1000, 512)
    print(json.dumps({"name": __name__, "argv": sys.argv, "size": sys.getsizeof(LEAKED[0])}))
"""


def aether(args: Sequence[str], cwd: Path, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aether_native", *args],
        cwd=cwd,
        env=kwargs.pop("env", ENV),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        **kwargs,
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def _leaky(tmp_path: Path) -> Path:
    return write(tmp_path / "leaky.py", LEAKY_SCRIPT)


def _leaky_bytes(heap: Path) -> int:
    report = leak_report(load_heap(heap))
    return sum(g.bytes for g in report.groups if g.frames and g.frames[-1].function == "leaky")


def test_summary_names_the_leak_and_its_size(tmp_path: Path) -> None:
    _leaky(tmp_path)
    done = aether(["memcheck", "-o", "out.heap.aprof", "--", "leaky.py", str(COUNT)], tmp_path)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["name"] == "__main__" and out["argv"] == ["leaky.py", str(COUNT)]
    assert "leaky" in done.stderr
    assert "LEAK SUMMARY:" in done.stderr
    assert "at leaky (" not in done.stderr  # summary: the totals only
    expected = COUNT * out["size"]
    leaked = _leaky_bytes(tmp_path / "out.heap.aprof")
    assert abs(leaked - expected) <= 0.02 * expected, (leaked, expected)


def test_full_shows_every_leaking_stack(tmp_path: Path) -> None:
    _leaky(tmp_path)
    done = aether(["memcheck", "--leak-check", "full", "-o", "o.heap.aprof", "leaky.py", "100"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "at leaky (" in done.stderr
    after = done.stderr.split("at leaky (", 1)[1].splitlines()[1]
    assert "by <module> (" in after and "leaky.py" in after, after  # the runner's frames are trimmed


def test_default_name_and_sampled_mode(tmp_path: Path) -> None:
    _leaky(tmp_path)
    done = aether(
        ["memcheck", "--mode", "sampled", "--sample-rate", "64KiB", "-q", "leaky.py", "100"], tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "LEAK SUMMARY" not in done.stderr
    files = list(tmp_path.glob("aether-leaky-*.heap.aprof"))
    assert len(files) == 1
    assert load_heap(files[0]).meta.mode == "sampled"


def test_fail_over(tmp_path: Path) -> None:
    _leaky(tmp_path)
    over = aether(["memcheck", "--fail-over", "1MiB", "-o", "a.heap.aprof", "leaky.py", str(COUNT)], tmp_path)
    assert over.returncode == 1, over.stderr
    lines = [line for line in over.stderr.splitlines() if line.startswith("aether: leak check failed:")]
    assert len(lines) == 1 and "bytes leaked (limit 1,048,576)" in lines[0], over.stderr
    assert (tmp_path / "a.heap.aprof").exists()
    under = aether(
        ["memcheck", "--fail-over", "100MiB", "-o", "b.heap.aprof", "leaky.py", str(COUNT)], tmp_path
    )
    assert under.returncode == 0, under.stderr
    assert "leak check failed" not in under.stderr


def test_target_status_and_exception_preserved(tmp_path: Path) -> None:
    write(tmp_path / "exits.py", "import sys\nKEEP = [b'x' * 4096 for _ in range(1000)]\nsys.exit(3)\n")
    done = aether(["memcheck", "--fail-over", "1KiB", "-o", "e.heap.aprof", "exits.py"], tmp_path)
    assert done.returncode == 3, done.stderr
    assert "leak check failed" not in done.stderr
    assert (tmp_path / "e.heap.aprof").exists()
    write(tmp_path / "raises.py", "def boom():\n    raise RuntimeError('kaput')\nboom()\n")
    done = aether(["memcheck", "-o", "r.heap.aprof", "raises.py"], tmp_path)
    assert done.returncode == 1, done.stderr
    assert "RuntimeError: kaput" in done.stderr and "Traceback" in done.stderr
    assert load_heap(tmp_path / "r.heap.aprof").meta.extra["exception"] == "RuntimeError"


def test_module_target(tmp_path: Path) -> None:
    write(tmp_path / "leakmod.py", LEAKY_SCRIPT)
    done = aether(["memcheck", "-o", "m.heap.aprof", "-m", "leakmod", "50"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["argv"][1:] == ["50"]
    assert (tmp_path / "m.heap.aprof").exists()


def test_perf_report_on_heap_file(tmp_path: Path) -> None:
    _leaky(tmp_path)
    done = aether(["memcheck", "-q", "-o", "h.heap.aprof", "leaky.py", "200"], tmp_path)
    assert done.returncode == 0, done.stderr
    text = aether(["perf-report", "--input", "h.heap.aprof", "--format", "text"], tmp_path)
    assert text.returncode == 0, text.stderr
    assert "LEAK SUMMARY:" in text.stdout and "leaky" in text.stdout
    speedscope = aether(["perf-report", "--input", "h.heap.aprof", "--format", "speedscope"], tmp_path)
    assert speedscope.returncode == 0, speedscope.stderr
    data = json.loads((tmp_path / "h.heap.speedscope.json").read_text())
    assert any(frame["name"] == "leaky" for frame in data["shared"]["frames"])
    collapsed = aether(["perf-report", "-i", "h.heap.aprof", "--format", "collapsed", "-o", "-"], tmp_path)
    assert collapsed.returncode == 0 and ";leaky (" in collapsed.stdout
    html = aether(["perf-report", "--input", "h.heap.aprof", "--format", "html"], tmp_path)
    assert html.returncode == 0, html.stderr
    page = (tmp_path / "h.heap.html").read_text()
    assert 'id="memory-chart"' in page and 'data-name="leaky"' in page
    leaks = page[page.index('<section id="leaks"') :]
    assert 'id="leak-stacks"' in leaks and leaks.index("leaky (") < leaks.index("</table>")
    for fmt in ("svg", "pprof", "chrome-trace"):
        bad = aether(["perf-report", "--input", "h.heap.aprof", "--format", fmt], tmp_path)
        assert bad.returncode == 2
        assert bad.stderr.count("\n") == 1 and "not available for heap snapshots yet" in bad.stderr


def test_bad_input_exits_2_before_the_target_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    write(tmp_path / "mark.py", f"open({str(marker)!r}, 'w').close()\n")
    cases = [
        ["--mode", "bogus"],
        ["--sample-rate", "12zz"],
        ["--sample-rate", "0"],
        ["--fail-over", "lots"],
        ["--leak-check", "some"],
        ["-o", str(tmp_path / "missing" / "x.heap.aprof")],
        ["-o", "-"],
    ]
    for options in cases:
        done = aether(["memcheck", *options, "--", "mark.py"], tmp_path)
        assert done.returncode == 2, (options, done.stderr)
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("aether: error: "), done.stderr
        assert not marker.exists(), options
    for argv in (["memcheck", "nope.py"], ["memcheck"], ["memcheck", "-m", "no_such_module_x"]):
        done = aether(argv, tmp_path)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, (argv, done.stderr)
    assert not marker.exists()
