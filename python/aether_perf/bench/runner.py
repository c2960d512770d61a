"""Running benchmarks in fresh worker processes, one side or two interleaved.

One run: a calibration worker of the first side fixes the loops of every selected benchmark
(the other sides reuse them, so values are comparable loop for loop); then ``processes`` rounds,
each starting one worker per side, the sides' order alternating from round to round (ABBA...), so
a slow drift of the machine hits both sides alike. Worker ``i`` gets ``PYTHONHASHSEED`` ``i + 1``
on every side, so side A's process ``i`` and side B's process ``i`` see the same hash seed.

A side is a set of benchmark files plus the ``sys.path`` entries their imports need: the current
tree, or (``--compare-ref``) a git worktree of another commit in a temporary directory, see
:func:`ref_side`.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aether_perf.bench.identity import current_identity
from aether_perf.bench.registry import discover_files, matches
from aether_perf.bench.results import BenchmarkResult, ProcessRun, Suite
from aether_perf.errors import InvalidArgument, RunFailed

__all__ = ["QUICK", "Settings", "Side", "current_side", "ref_side", "run", "run_benchmarks"]

WORKER = Path(__file__).resolve().with_name("worker.py")
#: The directory that holds this ``aether_perf`` package: workers need it to import the registry.
HARNESS_ROOT = str(Path(__file__).resolve().parents[2])

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Settings:
    """How much to measure. ``target`` is one value's duration in seconds (loops are calibrated
    to it); ``contamination`` the run-queue wait, as a fraction of a value's duration, above which
    a value is re-run (at most ``max_reruns`` times the number of values per process, per
    benchmark). Re-runs are bounded because the statistics use running times (value minus its
    wait), which stay usable when a busy machine preempts nearly every value."""

    processes: int = 10
    values: int = 5
    warmups: int = 1
    target: float = 0.02
    contamination: float = 0.02
    max_reruns: int = 1
    seed: int = 0
    python: str = sys.executable
    counter_hook: str | None = None
    timeout: float = 900.0

    def check(self) -> Settings:
        if self.processes < 2:
            raise InvalidArgument(f"processes must be at least 2, got {self.processes}")
        if self.values < 1 or self.warmups < 0 or self.max_reruns < 0:
            raise InvalidArgument("values must be at least 1; warmups and max_reruns at least 0")
        if not 0 < self.target <= 60:
            raise InvalidArgument(f"target value duration must be in (0, 60] seconds, got {self.target}")
        return self


#: ``--quick``: enough processes for the exact U test to reach p < 0.05 / 20, short values.
QUICK = Settings(processes=6, values=3, warmups=1, target=0.002, max_reruns=1)


@dataclass
class Side:
    """``label`` names the side in reports (``"head"``, ``"base"``)."""

    label: str
    files: list[Path]
    sys_path: list[str] = field(default_factory=list)
    cwd: Path = field(default_factory=Path.cwd)


def current_side(paths: Sequence[str | os.PathLike[str]], label: str = "head") -> Side:
    """The benchmark files under ``paths`` in this tree; InvalidArgument if a path is missing."""
    try:
        files = discover_files(paths)
    except FileNotFoundError as exc:
        raise InvalidArgument(f"no such file or directory: '{exc.filename}'") from None
    return Side(label, files, [HARNESS_ROOT])


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)


@contextlib.contextmanager
def ref_side(head: Side, ref: str, label: str = "base") -> Iterator[Side]:
    """The same benchmark files at git ``ref``: a detached worktree in a temporary directory,
    removed afterwards. Files and ``sys.path`` entries inside the repository are mapped into the
    worktree, so the ref's benchmark files import the ref's code. (Pure-Python code only: C
    extensions are not built in the worktree.)"""
    if not head.files:
        raise InvalidArgument("--compare-ref: no benchmark files")
    top = _git(head.files[0].parent, "rev-parse", "--show-toplevel")
    if top.returncode != 0:
        raise InvalidArgument(f"--compare-ref: {head.files[0]} is not in a git repository")
    root = Path(top.stdout.strip()).resolve()
    commit = _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if commit.returncode != 0:
        raise InvalidArgument(f"--compare-ref: {ref!r} is not a commit in {root}")
    with tempfile.TemporaryDirectory(prefix="aether-bench-ref-") as temporary:
        tree = Path(temporary) / "tree"
        added = _git(root, "worktree", "add", "--detach", "--quiet", str(tree), commit.stdout.strip())
        if added.returncode != 0:
            raise RunFailed(f"--compare-ref: git worktree add failed: {added.stderr.strip()}")
        try:

            def inside(path: Path) -> Path | None:
                try:
                    return tree / path.resolve().relative_to(root)
                except ValueError:
                    return None

            files = [mapped for mapped in (inside(f) for f in head.files) if mapped and mapped.is_file()]
            entries = [str(mapped) for mapped in (inside(Path(p)) for p in sys.path if p) if mapped]
            yield Side(label, files, [*entries, HARNESS_ROOT], tree)
        finally:
            _git(root, "worktree", "remove", "--force", str(tree))


def _worker(side: Side, spec: dict[str, Any], settings: Settings, hashseed: int) -> dict[str, Any]:
    """Run one worker to completion and return its result document."""
    spec = {**spec, "files": [str(f) for f in side.files], "sys_path": side.sys_path}
    env = dict(os.environ, PYTHONHASHSEED=str(hashseed))
    env.pop("PYTHONSTARTUP", None)
    with tempfile.TemporaryDirectory(prefix="aether-bench-") as temporary:
        spec_path = Path(temporary) / "spec.json"
        result_path = Path(temporary) / "result.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        try:
            done = subprocess.run(
                [settings.python, str(WORKER), str(spec_path), str(result_path)],
                cwd=side.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                timeout=settings.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise RunFailed(f"a benchmark worker ran longer than {settings.timeout:g}s") from None
        if not result_path.exists():
            tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise RunFailed(f"a benchmark worker died (exit status {done.returncode}): {tail[0]}")
        result: dict[str, Any] = json.loads(result_path.read_text(encoding="utf-8"))
    if "fatal" in result:
        raise RunFailed(f"cannot load the benchmarks ({side.label}): {result['fatal']}")
    return result


def run(
    sides: Sequence[Side],
    settings: Settings,
    pattern: str | None = None,
    progress: Progress | None = None,
) -> dict[str, list[BenchmarkResult]]:
    """Measure the benchmarks matching ``pattern`` on every side; results per side label.

    Raises InvalidArgument when no benchmark is found or none matches, RunFailed when a
    benchmark raises (naming it) or a worker dies.
    """
    settings.check()
    head = sides[0]
    if not head.files:
        raise InvalidArgument("no benchmarks found: no bench_*.py or *_bench.py files under the given paths")
    listing = _worker(head, {"mode": "list"}, settings, 1)["benchmarks"]
    if not listing:
        raise InvalidArgument("no benchmarks found: the files register none (@benchmark, group)")
    ids = [entry["id"] for entry in listing if matches(entry["id"], pattern)]
    if not ids:
        raise InvalidArgument(f"no benchmark matches --filter {pattern!r} ({len(listing)} found)")
    total = 1 + settings.processes * len(sides)
    if progress:
        progress(0, total, "calibrating")
    calibrated = _worker(head, _spec(settings, "calibrate", ids, {}, 0), settings, 1)
    _raise_errors(calibrated, head)
    loops: dict[str, int] = calibrated["loops"]
    side_ids: dict[str, list[str]] = {head.label: ids}
    for side in sides[1:]:
        present = {entry["id"] for entry in _worker(side, {"mode": "list"}, settings, 1)["benchmarks"]}
        side_ids[side.label] = [bench_id for bench_id in ids if bench_id in present]
    meta = {entry["id"]: entry for entry in listing}
    results = {
        side.label: {
            bench_id: BenchmarkResult(
                bench_id,
                meta[bench_id]["name"],
                meta[bench_id]["group"],
                meta[bench_id]["file"],
                loops[bench_id],
            )
            for bench_id in side_ids[side.label]
        }
        for side in sides
    }
    done = 1
    for index in range(settings.processes):
        order = list(sides) if index % 2 == 0 else list(reversed(sides))
        for side in order:
            if progress:
                progress(done, total, f"process {index + 1}/{settings.processes} ({side.label})")
            wanted = side_ids[side.label]
            if wanted:
                hashseed = index + 1
                spec = _spec(settings, "measure", wanted, loops, settings.seed * 7919 + index)
                outcome = _worker(side, spec, settings, hashseed)
                _raise_errors(outcome, side)
                for bench_id, data in outcome["results"].items():
                    results[side.label][bench_id].processes.append(ProcessRun(hashseed=hashseed, **data))
            done += 1
    if progress:
        progress(total, total, "done")
    return {label: list(by_id.values()) for label, by_id in results.items()}


def _spec(settings: Settings, mode: str, ids: list[str], loops: dict[str, int], seed: int) -> dict[str, Any]:
    return {
        "mode": mode,
        "ids": ids,
        "loops": loops,
        "target": settings.target,
        "values": settings.values,
        "warmups": settings.warmups,
        "contamination": settings.contamination,
        "max_reruns": settings.max_reruns,
        "order_seed": seed,
        "counter_hook": settings.counter_hook,
    }


def _raise_errors(outcome: dict[str, Any], side: Side) -> None:
    errors: dict[str, str] = outcome.get("errors", {})
    if errors:
        bench_id, message = next(iter(errors.items()))
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise RunFailed(f"benchmark {bench_id!r} failed ({side.label}): {message}{more}")


def make_suite(
    name: str, results: list[BenchmarkResult], settings: Settings, directory: Path | None = None
) -> Suite:
    """Wrap one side's results with the identity of this machine, Python and git tree."""
    identity = current_identity(directory, settings.python)
    created = datetime.now(UTC).isoformat(timespec="seconds")
    recorded = asdict(settings)
    recorded.pop("python")
    return Suite(name, created, identity, recorded, results)


def run_benchmarks(
    paths: Sequence[str | os.PathLike[str]],
    *,
    pattern: str | None = None,
    settings: Settings | None = None,
    name: str = "current",
    quick: bool = False,
) -> Suite:
    """The API behind ``aether bench PATHS``: measure and return one Suite."""
    chosen = settings or (QUICK if quick else Settings())
    side = current_side(paths)
    started = time.monotonic()
    results = run([side], chosen, pattern)
    suite = make_suite(name, results[side.label], chosen, side.files[0].parent if side.files else None)
    suite.settings["elapsed_s"] = round(time.monotonic() - started, 3)
    return suite
