"""Take `aether`'s own part out of the profile of the program it ran.

The target runs inside `aether`'s call chain (entry point, `main`, the runner, runpy), so every
sample of the main thread starts with those frames. They say nothing about the program; like
`python script.py`, the profile should start at the target's `<module>`. The --duration timer
thread is `aether`'s too (in wall mode it would be sampled, idle, all along).
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aether_perf.model import Frame, Profile

_CLI_DIR = os.path.dirname(os.path.abspath(__file__))


def _is_runner(frame: Frame) -> bool:
    return bool(frame.file) and os.path.dirname(os.path.abspath(frame.file)) == _CLI_DIR


def _is_runpy(frame: Frame) -> bool:
    return frame.file in ("<frozen runpy>", "runpy.py") or os.path.basename(frame.file) == "runpy.py"


def trim_runner_frames(profile: Profile) -> Profile:
    """`profile` with each stack cut after its last runner frame (and the runpy frames that follow).

    Stacks with no runner frame (other threads) are kept whole; a stack that would be left empty
    keeps its last runner frame and what follows it.
    """
    frames = profile.frames
    runner = [_is_runner(frame) for frame in frames]
    if not any(runner):
        return profile
    runpy = [_is_runpy(frame) for frame in frames]
    stacks: list[tuple[int, ...]] = []
    changed = False
    for stack in profile.stacks:
        last = max((depth for depth, index in enumerate(stack) if runner[index]), default=-1)
        start = last + 1
        while start < len(stack) and runpy[stack[start]]:
            start += 1
        if last < 0:
            stacks.append(stack)
            continue
        # A sample in the runner itself (compiling the script, waiting for the program's threads)
        # keeps the runner's innermost frame and what it called.
        stacks.append(stack[start:] if start < len(stack) else stack[last:])
        changed = True
    if not changed:
        return profile
    return _rebuild(profile, stacks, None)


def drop_threads(profile: Profile, tids: set[int]) -> Profile:
    """`profile` without the samples (and thread entries) of the threads `tids`."""
    present = tids & set(profile.threads)
    if not present:
        return profile
    import numpy as np

    keep = ~np.isin(profile.tid, sorted(present))
    return _rebuild(profile, profile.stacks, keep)


def _rebuild(profile: Profile, stacks: list[tuple[int, ...]], keep: Any) -> Profile:
    from aether_perf.model import Profile

    meta = profile.meta
    threads = profile.threads
    columns = {name: getattr(profile, name) for name in ("stack", "tid", "time_ns", "weight_ns", "flags")}
    if keep is not None:
        columns = {name: column[keep] for name, column in columns.items()}
        remaining = set(columns["tid"].tolist())
        threads = {tid: info for tid, info in threads.items() if tid in remaining}
        meta = dataclasses.replace(meta, sample_count=len(columns["tid"]), extra=dict(meta.extra))
    return Profile(profile.frames, stacks, threads, meta=meta, **columns)
