"""Declaring benchmarks: ``@benchmark``, ``group(...)``, and loading them from files.

A benchmark is a callable timed in a loop. With a ``setup``, ``setup()`` runs once per worker
process, outside the timing, and its result is passed to the callable on every call (so building a
million-element list is not what gets measured). Names are unique within a run: a benchmark in a
group is ``"group/name"``.

Benchmark files are plain Python modules; importing them registers their benchmarks. The registry
is module-global because that is what a decorator at import time can reach; :func:`load_files`
imports each file once under a private module name and returns what that import registered.
This module uses the standard library only: worker processes import it (see ``worker.py``).
"""

from __future__ import annotations

import fnmatch
import importlib.util
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, overload

__all__ = [
    "Benchmark",
    "benchmark",
    "discover_files",
    "group",
    "load_files",
    "matches",
    "registered",
]


@dataclass(frozen=True)
class Benchmark:
    """One registered benchmark: ``id`` is ``name`` or ``"group/name"``."""

    name: str
    func: Callable[..., object]
    group: str | None = None
    setup: Callable[[], object] | None = None
    file: str = ""

    @property
    def id(self) -> str:
        return f"{self.group}/{self.name}" if self.group else self.name


_REGISTRY: list[Benchmark] = []


def _file_of(func: Callable[..., object]) -> str:
    code = getattr(func, "__code__", None)
    return str(code.co_filename) if code is not None else ""


def _register(bench: Benchmark) -> Benchmark:
    for known in _REGISTRY:
        if known.id == bench.id and known.file == bench.file:
            raise ValueError(f"benchmark {bench.id!r} is defined twice in {bench.file}")
    _REGISTRY.append(bench)
    return bench


@overload
def benchmark(func: Callable[..., object], /) -> Callable[..., object]: ...


@overload
def benchmark(
    *, name: str | None = None, group: str | None = None, setup: Callable[[], object] | None = None
) -> Callable[[Callable[..., object]], Callable[..., object]]: ...


def benchmark(
    func: Callable[..., object] | None = None,
    /,
    *,
    name: str | None = None,
    group: str | None = None,
    setup: Callable[[], object] | None = None,
) -> Any:
    """Register ``func`` as a benchmark; use bare (``@benchmark``) or with options.

    ``name`` defaults to the function's name; ``setup`` (called once per worker process) makes
    its result the function's one argument. The function is returned unchanged.
    """

    def register(target: Callable[..., object]) -> Callable[..., object]:
        _register(
            Benchmark(
                name=name or str(getattr(target, "__name__", "benchmark")),
                func=target,
                group=group,
                setup=setup,
                file=_file_of(target),
            )
        )
        return target

    if func is not None:
        return register(func)
    return register


class group:
    """Benchmarks that belong together and share a ``setup``: ``g.add(name, func)``.

    ``with group("vector ops", setup=make_data) as g: g.add("numpy", lambda d: d * d)``.
    Outside a ``with`` block, ``add`` works the same; the block only reads well.
    """

    def __init__(self, name: str, setup: Callable[[], object] | None = None) -> None:
        if not name or "/" in name:
            raise ValueError(f"a group name must be non-empty and without '/': {name!r}")
        self.name = name
        self.setup = setup

    def add(self, name: str, func: Callable[..., object]) -> Callable[..., object]:
        """Register ``func`` as ``"<group>/<name>"``; it gets the group's setup result if any."""
        _register(Benchmark(name=name, func=func, group=self.name, setup=self.setup, file=_file_of(func)))
        return func

    def __enter__(self) -> group:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


def registered() -> list[Benchmark]:
    """Every benchmark registered so far in this process, in registration order."""
    return list(_REGISTRY)


def discover_files(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """The benchmark files named by ``paths``: a file as is; a directory's ``bench_*.py`` and
    ``*_bench.py`` files, recursively, sorted. Raises FileNotFoundError for a missing path."""
    found: list[Path] = []
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            for candidate in sorted(path.rglob("*.py")):
                if candidate.name.startswith("bench_") or candidate.stem.endswith("_bench"):
                    found.append(candidate.resolve())
        elif path.is_file():
            found.append(path.resolve())
        else:
            raise FileNotFoundError(2, "no such file or directory", str(path))
    unique: list[Path] = []
    for path in found:
        if path not in unique:
            unique.append(path)
    return unique


def load_files(files: Iterable[Path]) -> list[Benchmark]:
    """Import each file (its directory first on ``sys.path``, as ``python file.py`` would) and
    return the benchmarks the imports registered, in file then definition order."""
    loaded: list[Benchmark] = []
    for index, path in enumerate(files):
        before = len(_REGISTRY)
        module_name = f"_aether_bench_{index}_{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        directory = str(path.parent)
        if directory not in sys.path:
            sys.path.insert(0, directory)
        spec.loader.exec_module(module)
        loaded.extend(_REGISTRY[before:])
    ids: dict[str, str] = {}
    for bench in loaded:
        if bench.id in ids:
            raise ValueError(f"benchmark {bench.id!r} is defined in both {ids[bench.id]} and {bench.file}")
        ids[bench.id] = bench.file
    return loaded


def matches(bench_id: str, pattern: str | None) -> bool:
    """``--filter``: a glob (``*``, ``?``, ``[``) matched against the whole id, else a substring."""
    if not pattern:
        return True
    if any(char in pattern for char in "*?["):
        return fnmatch.fnmatchcase(bench_id, pattern)
    return pattern in bench_id
