"""Differences between two profiles: which functions and which stacks gained or lost time.

Each profile's weights are normalised by its own total (all threads merged), so a base profile of
10 seconds and a new one of 12 compare as shares: a function at 30% of the base and 45% of the new
profile grew by 15 percentage points (``delta_*_pct = new_*_pct - base_*_pct``), whatever the
absolute times. Functions are matched by their identity ``(function, file, first_line)``, stacks by
their path of function identities (root first), so two runs of one program line up even though
their frame tables differ.
"""

from __future__ import annotations

from dataclasses import dataclass

from aether_perf.analysis.selection import select_samples, stack_totals
from aether_perf.analysis.top import function_stats
from aether_perf.model.frame import FunctionKey
from aether_perf.model.profile import Profile

__all__ = ["FunctionDelta", "FunctionPath", "PathDelta", "ProfileDiff", "diff_profiles", "path_weights"]

#: A stack as a path of function identities, root first (``()`` for a sample with no Python frames).
FunctionPath = tuple[FunctionKey, ...]


@dataclass(frozen=True, slots=True)
class FunctionDelta:
    """One function's share of each profile (percentages 0-100 of that profile's total weight).

    ``self`` counts the samples with the function as the leaf, ``total`` those with it anywhere on
    the stack (once per sample). A function absent from one profile has zeros there.
    """

    function: str
    file: str
    first_line: int
    base_self_ns: int
    new_self_ns: int
    base_total_ns: int
    new_total_ns: int
    base_self_pct: float
    new_self_pct: float
    base_total_pct: float
    new_total_pct: float

    @property
    def key(self) -> FunctionKey:
        """``(function, file, first_line)``."""
        return (self.function, self.file, self.first_line)

    @property
    def delta_self_pct(self) -> float:
        """Change of the self share, in percentage points (positive: grew)."""
        return self.new_self_pct - self.base_self_pct

    @property
    def delta_total_pct(self) -> float:
        """Change of the total share, in percentage points (positive: grew)."""
        return self.new_total_pct - self.base_total_pct


@dataclass(frozen=True, slots=True)
class PathDelta:
    """One distinct stack (a path of functions, root first) and its share of each profile."""

    path: FunctionPath
    base_ns: int
    new_ns: int
    base_pct: float
    new_pct: float

    @property
    def delta_pct(self) -> float:
        """Change of the share, in percentage points (positive: grew)."""
        return self.new_pct - self.base_pct


@dataclass(frozen=True)
class ProfileDiff:
    """What :func:`diff_profiles` returns.

    ``functions`` and ``paths`` are sorted by the size of the change, largest first: functions by
    ``|delta_self_pct|``, then ``|delta_total_pct|``; paths by ``|delta_pct|``; ties by identity.
    Entries whose shares are equal (and nonzero in neither) are kept, so every function and path of
    either profile appears.
    """

    base_total_ns: int
    new_total_ns: int
    base_samples: int
    new_samples: int
    functions: list[FunctionDelta]
    paths: list[PathDelta]

    def function(self, function: str, file: str | None = None) -> FunctionDelta:
        """The entry of the function named ``function`` (and in ``file``, if given).

        Raises KeyError when there is none, or more than one matches.
        """
        found = [f for f in self.functions if f.function == function and (file is None or f.file == file)]
        if len(found) != 1:
            raise KeyError(f"{len(found)} functions named {function!r}" + (f" in {file!r}" if file else ""))
        return found[0]


def path_weights(profile: Profile, *, include_idle: bool = True) -> tuple[dict[FunctionPath, int], int, int]:
    """Summed weight per function path, plus the total weight and sample count of the selection."""
    totals = stack_totals(profile, select_samples(profile, include_idle=include_idle))
    keys = [frame.function_key for frame in profile.frames]
    weights = totals.weight_ns.tolist()
    result: dict[FunctionPath, int] = {}
    for stack_id in totals.present():
        path = tuple(keys[i] for i in profile.stacks[stack_id])
        result[path] = result.get(path, 0) + weights[stack_id]
    return result, totals.total_ns, totals.total_samples


def _pct(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0


def diff_profiles(base: Profile, new: Profile, *, include_idle: bool = True) -> ProfileDiff:
    """Compare ``new`` against ``base`` per function and per stack path (see the module doc).

    ``include_idle=False`` leaves idle samples (wall mode) out of both profiles and their totals.
    """
    base_paths, base_total, base_samples = path_weights(base, include_idle=include_idle)
    new_paths, new_total, new_samples = path_weights(new, include_idle=include_idle)

    paths = [
        PathDelta(
            path=path,
            base_ns=base_paths.get(path, 0),
            new_ns=new_paths.get(path, 0),
            base_pct=_pct(base_paths.get(path, 0), base_total),
            new_pct=_pct(new_paths.get(path, 0), new_total),
        )
        for path in base_paths.keys() | new_paths.keys()
    ]
    paths.sort(key=lambda p: (-abs(p.delta_pct), p.path))

    base_stats = {s.key: s for s in function_stats(base, include_idle=include_idle)}
    new_stats = {s.key: s for s in function_stats(new, include_idle=include_idle)}
    functions: list[FunctionDelta] = []
    for key in base_stats.keys() | new_stats.keys():
        old, now = base_stats.get(key), new_stats.get(key)
        functions.append(
            FunctionDelta(
                function=key[0],
                file=key[1],
                first_line=key[2],
                base_self_ns=old.self_ns if old else 0,
                new_self_ns=now.self_ns if now else 0,
                base_total_ns=old.total_ns if old else 0,
                new_total_ns=now.total_ns if now else 0,
                base_self_pct=old.self_pct if old else 0.0,
                new_self_pct=now.self_pct if now else 0.0,
                base_total_pct=old.total_pct if old else 0.0,
                new_total_pct=now.total_pct if now else 0.0,
            )
        )
    functions.sort(key=lambda f: (-abs(f.delta_self_pct), -abs(f.delta_total_pct), f.key))
    return ProfileDiff(
        base_total_ns=base_total,
        new_total_ns=new_total,
        base_samples=base_samples,
        new_samples=new_samples,
        functions=functions,
        paths=paths,
    )
