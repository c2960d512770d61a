"""Leak-check quality: what a leak-free program reports, where the noise goes, and that a real leak
is still reported in full.

Ground truth:
- ``clean.py`` leaks nothing of its own: it imports json, compiles a regex, builds a Counter (an
  ABC subclass check), dumps JSON and drops everything. Under ``aether memcheck`` it must report 0
  bytes of program leaks with ``--warmup 1``; without warm-up, the noise (tens of KB of imported
  module state) must land in the ``import`` origin, not in the program's.
- ``leaky.py`` keeps 10,000 bytes objects of 1 KiB from ``leak()``: exactly 10,000 x
  ``sys.getsizeof`` of one of them, which exact mode must report within 1%, with and without
  warm-up (the warm-up run's leak dies with its ``__main__`` before tracking starts).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from aether_perf.analysis.heap import leak_report
from aether_perf.analysis.leak_origin import leak_origin
from aether_perf.errors import InvalidArgument
from aether_perf.model import Frame, load_heap
from workloads import cli_env

ENV = cli_env()
TIMEOUT = 120
KIB = 1024

CLEAN = """\
import collections
import json
import re


def work():
    table = {i: str(i) * 3 for i in range(1000)}
    re.compile(r"a+b[cd]*")
    json.dumps({"a": [1, 2, 3], "b": list(table.values())[:10]})
    collections.Counter("hello world")
    return sum(len(v) for v in table.values())


if __name__ == "__main__":
    print(work())
"""

LEAKY = """\
import json
import sys

KEPT = []


def leak(count):
    for i in range(count):
        KEPT.append(bytes(1000) + i.to_bytes(24, "little"))


if __name__ == "__main__":
    leak(10_000)
    print(json.dumps({"size": sys.getsizeof(KEPT[0])}))
"""


def memcheck(tmp_path: Path, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "target.py"
    path.write_text(textwrap.dedent(script))
    return subprocess.run(
        [sys.executable, "-m", "aether_native", "memcheck", "-o", "out.heap.aprof", *args, "target.py"],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def test_leak_free_script_reports_no_program_leak_after_warmup(tmp_path: Path) -> None:
    done = memcheck(tmp_path, CLEAN, "--warmup", "1", "--fail-over", "1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["8670", "8670"]  # warm-up run, then the tracked one
    assert "LEAK SUMMARY: 0 bytes in 0 blocks from 0 stacks" in done.stderr
    report = leak_report(load_heap(tmp_path / "out.heap.aprof"))
    assert (report.total_bytes, report.groups) == (0, [])
    # Everything still live is accounted for under another origin.
    everything = leak_report(load_heap(tmp_path / "out.heap.aprof"), exclude=())
    assert sum(t.bytes for t in report.excluded.values()) == everything.total_bytes


def test_without_warmup_the_noise_is_import_state_not_the_program(tmp_path: Path) -> None:
    done = memcheck(tmp_path, CLEAN, "--leak-check", "full")
    assert done.returncode == 0, done.stderr
    report = leak_report(load_heap(tmp_path / "out.heap.aprof"))
    # json's modules are imported under tracking: their code and globals are tens of KB.
    assert report.excluded["import"].bytes > 20_000
    assert "cache" in report.excluded  # the re and abc caches
    # What is left to the program is first-call state of the stdlib it called (well under 1 KiB).
    assert report.total_bytes < KIB
    assert "kept by module imports" in done.stderr


@pytest.mark.parametrize("warmup", ["0", "1"])
def test_known_leak_still_reported_within_one_percent(tmp_path: Path, warmup: str) -> None:
    done = memcheck(tmp_path, LEAKY, "--warmup", warmup)
    assert done.returncode == 0, done.stderr
    size = json.loads(done.stdout.splitlines()[-1])["size"]
    report = leak_report(load_heap(tmp_path / "out.heap.aprof"))
    in_leak = sum(g.bytes for g in report.groups if g.frames and g.frames[-1].function == "leak")
    truth = 10_000 * size
    assert abs(in_leak - truth) <= 0.01 * truth
    assert report.groups[0].frames[-1].function == "leak"
    assert report.total_bytes - in_leak < 0.01 * truth


def test_fail_over_judges_only_the_program(tmp_path: Path) -> None:
    over = memcheck(tmp_path, LEAKY, "--fail-over", "1MiB")
    assert over.returncode == 1
    assert "leak check failed" in over.stderr
    under = memcheck(tmp_path, LEAKY, "--fail-over", "20MiB")
    assert under.returncode == 0, under.stderr
    # The clean script's ~100 KB of import state does not trip a 1 KiB limit.
    clean = memcheck(tmp_path, CLEAN, "--fail-over", "1KiB")
    assert clean.returncode == 0, clean.stderr


def test_warmup_failure_and_bad_values(tmp_path: Path) -> None:
    failing = memcheck(tmp_path, "import sys\nsys.exit(3)\n", "--warmup", "2")
    assert failing.returncode == 3
    assert "warm-up run 1 exited with status 3; not tracking" in failing.stderr
    assert not (tmp_path / "out.heap.aprof").exists()
    for bad in ("-1", "x", "1001"):
        done = memcheck(tmp_path, CLEAN, "--warmup", bad)
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("aether: error:")
        assert "--warmup" in done.stderr


# -- origins, on hand-built stacks ----------------------------------------------------------------

STDLIB = str(Path(json.__file__).resolve().parents[1])  # .../lib/python3.X


def test_origins(tmp_path: Path) -> None:
    user = Frame("main", str(tmp_path / "app.py"), 3, 1)
    assert leak_origin(()) == "no-frames"
    assert leak_origin((user,)) == "user"
    assert leak_origin((user, Frame("_find_and_load", "<frozen importlib._bootstrap>", 1176, 1))) == "import"
    bootstrap = Frame("f", f"{STDLIB}/importlib/_bootstrap.py", 1, 1)
    assert leak_origin((Frame("<module>", "x.py", 1, 1), bootstrap)) == "import"
    ours = Frame("AllocationTracker.stop", "/somewhere/aether_native/memory.py", 9, 1)
    assert leak_origin((user, ours)) == "tracker"
    assert leak_origin((user, Frame("_compile", f"{STDLIB}/re/__init__.py", 294, 1))) == "cache"
    assert leak_origin((user, Frame("__subclasscheck__", "<frozen abc>", 123, 1))) == "cache"
    assert leak_origin((user, Frame("inner", f"{STDLIB}/typing.py", 9, 1))) == "cache"
    # A module named like a stdlib one but installed in site-packages is the program's.
    assert leak_origin((user, Frame("f", f"{STDLIB}/site-packages/typing.py", 9, 1))) == "user"
    # def/class statements of a module or class body are definitions; a closure made by a function
    # is not (closures can leak).
    src = tmp_path / "defs.py"
    src.write_text(
        "import functools\n\n@functools.cache\ndef f():\n    pass\n\nclass A:\n    def g(self):\n"
        "        def closure():\n            pass\n        return closure\n"
    )
    file = str(src)
    assert leak_origin((Frame("<module>", file, 4, 1),)) == "definitions"
    assert leak_origin((Frame("<module>", file, 3, 1),)) == "definitions"
    assert leak_origin((Frame("<module>", file, 7, 1),)) == "definitions"
    assert leak_origin((Frame("<module>", file, 7, 1), Frame("A", file, 8, 7))) == "definitions"
    assert leak_origin((Frame("A.g", file, 9, 8),)) == "user"
    assert leak_origin((Frame("<module>", str(tmp_path / "gone.py"), 4, 1),)) == "user"


def test_leak_report_exclude_argument() -> None:
    from aether_perf.model import HeapMeta, HeapSnapshot

    meta = HeapMeta("exact", 0, 0.0, 1.0, "3.11", False, 0, 0, 0, 0, 0, 0)
    snap = HeapSnapshot(
        [], [()], stack=[0], size=[64], bytes=[64], count=[1], tid=[1], time_ns=[5], meta=meta
    )
    assert leak_report(snap).total_bytes == 0
    assert leak_report(snap, exclude=()).total_bytes == 64
    with pytest.raises(InvalidArgument, match="origins"):
        leak_report(snap, exclude=("bogus",))
    with pytest.raises(InvalidArgument):
        leak_report(snap, exclude="import")
