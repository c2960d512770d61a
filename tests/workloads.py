"""Workloads and profile-reading helpers shared by the sampler tests (tests/test_sampler_*.py).

The attribution helpers read the Profile's columns directly (they do not use aether_perf.analysis),
so the sampler tests check the recorder against ground truth measured in the same run, whatever
the analysis layer does. Functions are identified by their qualname: every workload function here
has a name that appears nowhere else.

Workload functions are deliberately leaf functions: each burns CPU in its own body (a Python loop,
with only C calls below it), so a sample taken while it runs has it as the innermost frame.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


# -- subprocesses ------------------------------------------------------------------------------


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a child Python that must import aether_native and aether_perf.

    When this process imports them from an installed location (site-packages: CI's
    ``pip install .`` then ``python -P -m pytest``), the environment is passed as is. When they
    come from the source tree (an in-place build on PYTHONPATH, or the repo root on sys.path), the
    child gets the repo root and repo/python prepended to PYTHONPATH, so it does not depend on the
    caller having set it.
    """
    env = dict(os.environ)
    env.pop("AETHER_SIGNAL", None)
    add: list[str] = []
    for name, where in (("aether_native", ROOT), ("aether_perf", ROOT / "python")):
        spec = importlib.util.find_spec(name)
        origin = Path(spec.origin).resolve() if spec is not None and spec.origin else None
        if origin is None or where in origin.parents:
            add.append(str(where))
    if add:
        current = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        env["PYTHONPATH"] = os.pathsep.join(add + [p for p in current if p not in add])
    env["PYTHONFAULTHANDLER"] = "1"  # a crash in a child prints where it happened
    if extra:
        env.update(extra)
    return env


def cli_env() -> dict[str, str]:
    """``child_env()`` for the `aether` command's subprocess tests: wide, colourless output, so
    the summary's function names are not wrapped and the text can be matched."""
    env = child_env({"COLUMNS": "200"})
    env.pop("NO_COLOR", None)
    env.pop("FORCE_COLOR", None)
    return env


def run_script(
    source: str,
    directory: Path,
    *,
    timeout: float,
    name: str = "child.py",
    args: Iterable[str] = (),
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Write ``source`` to ``directory/name`` and run it with this interpreter; never raises on a
    non-zero exit (the caller asserts), but a child running past ``timeout`` fails the test."""
    path = directory / name
    path.write_text(source)
    return subprocess.run(
        [sys.executable, str(path), *args],
        cwd=directory,
        env=child_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def describe(result: subprocess.CompletedProcess[str]) -> str:
    """Exit status and output of a child, for assertion messages."""
    return (
        f"exit status {result.returncode}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    )


# -- reading profiles --------------------------------------------------------------------------


def _per_stack(profile: Any, mask: np.ndarray | None) -> np.ndarray:
    """Summed weight of the selected samples per stack index."""
    weights = profile.weight_ns.astype(np.float64)
    stacks = profile.stack
    if mask is not None:
        weights, stacks = weights[mask], stacks[mask]
    return np.bincount(stacks, weights=weights, minlength=len(profile.stacks))


def self_weights(profile: Any, mask: np.ndarray | None = None) -> dict[str, float]:
    """Weight (ns) per leaf function (the innermost frame's qualname; "" for empty stacks)."""
    out: dict[str, float] = {}
    for index, weight in enumerate(_per_stack(profile, mask)):
        if weight:
            stack = profile.stacks[index]
            name = profile.frames[stack[-1]].function if stack else ""
            out[name] = out.get(name, 0.0) + float(weight)
    return out


def total_weights(profile: Any, mask: np.ndarray | None = None) -> dict[str, float]:
    """Weight (ns) per function anywhere in the stack, counted once per sample."""
    out: dict[str, float] = {}
    for index, weight in enumerate(_per_stack(profile, mask)):
        if weight:
            for name in {profile.frames[f].function for f in profile.stacks[index]}:
                out[name] = out.get(name, 0.0) + float(weight)
    return out


def stacks_with(profile: Any, function: str) -> np.ndarray:
    """Boolean per stack index: the stack contains ``function``."""
    names = [frame.function for frame in profile.frames]
    return np.array([any(names[f] == function for f in stack) for stack in profile.stacks], dtype=bool)


def samples_with(profile: Any, function: str) -> np.ndarray:
    """Boolean per sample: its stack contains ``function``."""
    if len(profile.stacks) == 0:
        return np.zeros(len(profile.stack), dtype=bool)
    return stacks_with(profile, function)[profile.stack]


def samples_with_leaf(profile: Any, function: str) -> np.ndarray:
    """Boolean per sample: its innermost frame is ``function``."""
    if len(profile.stacks) == 0:
        return np.zeros(len(profile.stack), dtype=bool)
    leaf = np.array(
        [bool(stack) and profile.frames[stack[-1]].function == function for stack in profile.stacks],
        dtype=bool,
    )
    return leaf[profile.stack]


def weight(profile: Any, mask: np.ndarray | None = None) -> float:
    """Summed weight (ns) of the selected samples."""
    return float(profile.weight_ns.sum() if mask is None else profile.weight_ns[mask].sum())


def functions_of_thread(profile: Any, tid: int) -> set[str]:
    """Every function name appearing in the stacks of thread ``tid``'s samples."""
    return {
        profile.frames[f].function
        for s in np.unique(profile.stack[profile.tid == tid])
        for f in profile.stacks[s]
    }


def summary(profile: Any, mask: np.ndarray | None = None, top: int = 8) -> str:
    """A short text of the heaviest leaf functions, for assertion messages."""
    selfw = self_weights(profile, mask)
    total = sum(selfw.values()) or 1.0
    parts = [
        f"{name or '<empty>'}={w / total:.1%}" for name, w in sorted(selfw.items(), key=lambda kv: -kv[1])
    ]
    return (
        f"{len(profile.stack)} samples, {total / 1e9:.3f}s weight; self: "
        + ", ".join(parts[:top])
        + f"; counters: {profile.meta.extra.get('sampler')}"
    )


# -- CPU burners (leaf functions, each with its own loop) ---------------------------------------
# The loops poll time.thread_time() (a C call, so the Python function stays the innermost frame)
# every few microseconds of work: each runs for the given CPU time whatever the machine's speed.


def spin_for(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        for _ in range(50):
            pass


def attr_sixty(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        for _ in range(50):
            pass


def attr_thirty(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        for _ in range(50):
            pass


def attr_ten(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        for _ in range(50):
            pass


ATTRIBUTION_SHARES = {"attr_sixty": 0.6, "attr_thirty": 0.3, "attr_ten": 0.1}
_ATTRIBUTION_FUNCS: dict[str, Callable[[float], None]] = {
    "attr_sixty": attr_sixty,
    "attr_thirty": attr_thirty,
    "attr_ten": attr_ten,
}


def attribution_workload(total: float = 1.5, chunk: float = 0.03) -> dict[str, dict[str, float]]:
    """Run attr_sixty/attr_thirty/attr_ten for 60/30/10% of ``total`` CPU seconds, in interleaved
    chunks of ``chunk`` seconds (the order rotating every chunk).

    Returns ``{"cpu": {...}, "wall": {...}}``: each function's CPU time (time.thread_time) and wall
    time (time.perf_counter) measured around its calls, plus under "total" the CPU and wall time
    of the whole loop (the driver's own bits included)."""
    cpu = dict.fromkeys(_ATTRIBUTION_FUNCS, 0.0)
    wall = dict.fromkeys(_ATTRIBUTION_FUNCS, 0.0)
    names = list(_ATTRIBUTION_FUNCS)
    c_start, w_start = time.thread_time(), time.perf_counter()
    for round_ in range(max(1, round(total / chunk))):
        for k in range(len(names)):
            name = names[(round_ + k) % len(names)]
            c0, w0 = time.thread_time(), time.perf_counter()
            _ATTRIBUTION_FUNCS[name](chunk * ATTRIBUTION_SHARES[name])
            w1, c1 = time.perf_counter(), time.thread_time()
            cpu[name] += c1 - c0
            wall[name] += w1 - w0
    cpu["total"] = time.thread_time() - c_start
    wall["total"] = time.perf_counter() - w_start
    return {"cpu": cpu, "wall": wall}


# -- busy / sleeping ----------------------------------------------------------------------------


def busy_phase(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        for _ in range(50):
            pass


def sleep_phase(seconds: float) -> None:
    time.sleep(seconds)


def alternate_busy_sleep(busy: float, sleep: float, total: float) -> dict[str, float]:
    """Alternate busy_phase(busy CPU seconds) and sleep_phase(sleep seconds) for ``total`` wall
    seconds; return the wall and CPU time measured around each kind of call, and of the whole loop
    ("total_wall", "total_cpu": the driver's own bits included)."""
    out = {"busy_wall": 0.0, "busy_cpu": 0.0, "sleep_wall": 0.0, "sleep_cpu": 0.0}
    w_start, c_start = time.perf_counter(), time.thread_time()
    end = w_start + total
    while time.perf_counter() < end:
        w0, c0 = time.perf_counter(), time.thread_time()
        busy_phase(busy)
        w1, c1 = time.perf_counter(), time.thread_time()
        sleep_phase(sleep)
        w2, c2 = time.perf_counter(), time.thread_time()
        out["busy_wall"] += w1 - w0
        out["busy_cpu"] += c1 - c0
        out["sleep_wall"] += w2 - w1
        out["sleep_cpu"] += c2 - c1
    out["total_wall"] = time.perf_counter() - w_start
    out["total_cpu"] = time.thread_time() - c_start
    return out


def nap_first(seconds: float) -> None:
    time.sleep(seconds)


def nap_second(seconds: float) -> None:
    time.sleep(seconds)


def naps_workload(count: int = 100, each: float = 0.005) -> dict[str, float]:
    """Alternate nap_first(``each``) and nap_second(``each``) ``count`` times each: between two
    sleeps the thread runs only a few microseconds of CPU (return, loop, call). Returns the wall
    time spent in each and in the whole loop."""
    out = {"nap_first": 0.0, "nap_second": 0.0}
    w_start = time.perf_counter()
    for _ in range(count):
        w0 = time.perf_counter()
        nap_first(each)
        w1 = time.perf_counter()
        nap_second(each)
        w2 = time.perf_counter()
        out["nap_first"] += w1 - w0
        out["nap_second"] += w2 - w1
    out["total"] = time.perf_counter() - w_start
    return out


# -- threads ------------------------------------------------------------------------------------


def alpha_work(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        for _ in range(50):
            pass


def beta_work(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        for _ in range(50):
            pass


def short_lived_work(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        for _ in range(50):
            pass


class CpuThread(threading.Thread):
    """A thread that calls ``target(*args)`` and measures its own CPU time (time.thread_time) and
    native id; ``cpu`` counts from the thread's first instruction to its last."""

    def __init__(self, target: Callable[..., Any], *args: Any, name: str | None = None) -> None:
        super().__init__(name=name, daemon=True)
        self._work = target
        self._work_args = args
        self.cpu = 0.0
        self.ended_ns = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            t0 = time.thread_time()
            self._work(*self._work_args)
            self.cpu = time.thread_time() - t0
        except BaseException as exc:  # surfaced by the test through .error
            self.error = exc
        finally:
            self.ended_ns = time.monotonic_ns()


# -- native (GIL-releasing) time ------------------------------------------------------------------


def hash_caller(buffer: bytes, seconds: float) -> int:
    """Hash ``buffer`` (large: hashlib releases the GIL) repeatedly for ``seconds`` of wall time."""
    rounds = 0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        hashlib.sha256(buffer).digest()
        rounds += 1
    return rounds


def sleep_caller(seconds: float) -> None:
    time.sleep(seconds)


# -- recursion ----------------------------------------------------------------------------------


def recurse(depth: int, seconds: float) -> int:
    """Recurse ``depth`` frames of recurse(), then burn ``seconds`` of CPU in recursion_bottom()
    (so a sample with recursion_bottom as its leaf was taken at full depth)."""
    if depth > 1:
        return recurse(depth - 1, seconds) + 1
    recursion_bottom(seconds)
    return 1


def recursion_bottom(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        for _ in range(50):
            pass
