"""Benchmark results as JSON files, and the store of saved runs (``--save`` / ``--compare``).

A results document (schema in ``schema.py``, version :data:`VERSION`) holds one :class:`Suite`:
its name, creation time, identity (machine, Python, git), settings, and per benchmark the loops,
the summary statistics and every process's values with their covariates. The statistics are
written for readers of the file; on loading they are recomputed from the values.

The store is a directory (default ``.aether-bench`` in the current directory) of
``<name>.json`` files; saving a name again replaces that entry (atomically). History for the HTML
report is every saved run, oldest first.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

from aether_perf.bench.results import BenchmarkResult, Identity, ProcessRun, Suite
from aether_perf.errors import InvalidArgument, ProfileFormatError
from aether_perf.fileio import atomic_write_text

__all__ = ["DEFAULT_STORE", "FORMAT", "VERSION", "BenchStore", "from_document", "load_file", "to_document"]

FORMAT = "aether-bench"
VERSION = 1
DEFAULT_STORE = ".aether-bench"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def to_document(suite: Suite) -> dict[str, Any]:
    """The JSON-ready document of ``suite`` (see ``schema.RESULTS_SCHEMA``)."""
    benchmarks = []
    for bench in suite.benchmarks:
        benchmarks.append(
            {
                "id": bench.id,
                "name": bench.name,
                "group": bench.group,
                "file": bench.file,
                "loops": bench.loops,
                "unit": "seconds per loop",
                "stats": asdict(bench.summary) if bench.processes else None,
                "contaminated": bench.contaminated,
                "reruns": bench.reruns,
                "processes": [asdict(run) for run in bench.processes],
            }
        )
    return {
        "format": FORMAT,
        "version": VERSION,
        "name": suite.name,
        "created": suite.created,
        "identity": asdict(suite.identity),
        "settings": suite.settings,
        "benchmarks": benchmarks,
    }


def from_document(document: Any, where: str) -> Suite:
    """The Suite in a loaded document; ProfileFormatError naming ``where`` if it is not one."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ProfileFormatError(f"{where}: not an aether benchmark results file")
    version = document.get("version")
    if version != VERSION:
        raise ProfileFormatError(f"{where}: results format version {version!r}, this aether reads {VERSION}")
    try:
        identity = Identity(**document["identity"])
        benchmarks = []
        for entry in document["benchmarks"]:
            processes = [ProcessRun(**run) for run in entry["processes"]]
            for run in processes:
                if not all(isinstance(value, int | float) and value > 0 for value in run.values):
                    raise ValueError("a value is not a positive number")
            benchmarks.append(
                BenchmarkResult(
                    id=str(entry["id"]),
                    name=str(entry["name"]),
                    group=entry["group"],
                    file=str(entry["file"]),
                    loops=int(entry["loops"]),
                    processes=processes,
                )
            )
        return Suite(
            name=str(document["name"]),
            created=str(document["created"]),
            identity=identity,
            settings=dict(document["settings"]),
            benchmarks=benchmarks,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProfileFormatError(
            f"{where}: corrupt benchmark results ({type(exc).__name__}: {exc})"
        ) from None


def load_file(path: str | os.PathLike[str]) -> Suite:
    """Read a results file; ProfileFormatError (one line, naming the file) for anything else."""
    where = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except FileNotFoundError:
        raise ProfileFormatError(f"{where}: no such benchmark results file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileFormatError(f"{where}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ProfileFormatError(f"{where}: corrupt benchmark results (not JSON: {exc.msg})") from None
    return from_document(document, where)


def write_file(suite: Suite, path: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> None:
    """Write ``suite`` (plus ``extra`` top-level keys, e.g. a comparison) atomically."""
    document = to_document(suite)
    if extra:
        document.update(extra)
    with atomic_write_text(path) as handle:
        json.dump(document, handle, indent=1, allow_nan=False)
        handle.write("\n")


class BenchStore:
    """A directory of saved runs, one ``<name>.json`` each."""

    def __init__(self, directory: str | os.PathLike[str] = DEFAULT_STORE) -> None:
        self.directory = Path(directory)

    @staticmethod
    def check_name(name: str) -> str:
        if not _NAME.match(name):
            raise InvalidArgument(
                f"--save: {name!r} is not a valid name (letters, digits, '.', '_', '-'; at most 100)"
            )
        return name

    def path_of(self, name: str) -> Path:
        return self.directory / f"{self.check_name(name)}.json"

    def save(self, suite: Suite) -> Path:
        path = self.path_of(suite.name)
        self.directory.mkdir(parents=True, exist_ok=True)
        write_file(suite, path)
        return path

    def resolve(self, baseline: str) -> Path:
        """``--compare`` takes a saved name or a path to a results file."""
        if _NAME.match(baseline) and self.path_of(baseline).is_file():
            return self.path_of(baseline)
        path = Path(baseline)
        if path.is_file():
            return path
        raise InvalidArgument(
            f"--compare: no saved run named {baseline!r} in {self.directory} and no such file"
        )

    def load(self, baseline: str) -> Suite:
        return load_file(self.resolve(baseline))

    def history(self) -> list[Suite]:
        """Every readable saved run, oldest first (unreadable files are skipped)."""
        suites = []
        if self.directory.is_dir():
            for path in sorted(self.directory.glob("*.json")):
                try:
                    suites.append(load_file(path))
                except ProfileFormatError:
                    continue
        return sorted(suites, key=lambda suite: suite.created)
