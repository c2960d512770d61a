"""GIL contention per thread, from the flags of a wall-mode profile.

In wall mode every thread is sampled whether it runs or not, and each sample carries what the
signal handler saw at that instant (see ``model/frame.py``):

- ``FLAG_HOLDS_GIL``: the thread held the GIL;
- ``FLAG_GIL_WAIT``: it was blocked in ``futex()`` on the GIL's condition variable or mutex
  (the C core compares the futex address with the GIL's struct);
- ``FLAG_BLOCKED`` without ``FLAG_GIL_WAIT``: blocked on anything else (sleep, I/O, a lock);
- none of these: on a CPU without the GIL: being handed the GIL (woken, not yet its owner) or
  running a C call that released it (zlib, hashlib, numpy).

A thread's *GIL wait* is the weight of its samples that were blocked on the GIL plus those on a
CPU without it; the second part is reported apart (``running_unlocked_ns``) because a C call
that released the GIL counts there too. Samples are weighted by the wall time they stand for,
so the shares are shares of the thread's lifetime while sampled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from aether_perf.errors import InvalidArgument
from aether_perf.model.finding import Finding, Location
from aether_perf.model.frame import FLAG_BLOCKED, FLAG_GIL_WAIT, FLAG_HOLDS_GIL, FLAG_IDLE
from aether_perf.model.profile import Profile

__all__ = ["DEFAULT_MAX_WAIT_SHARE", "RULE_GIL", "GilThread", "findings", "gil_contention"]

RULE_GIL = "gil.contention"
#: Share of a thread's wall time spent waiting for the GIL above which it is reported (ours: the
#: chapter gives no threshold; two CPU-bound threads wait about half their time each).
DEFAULT_MAX_WAIT_SHARE = 0.25


@dataclass(frozen=True, slots=True)
class GilThread:
    """What one thread did with the GIL (nanoseconds of wall time)."""

    tid: int
    name: str
    total_ns: int
    holding_ns: int
    blocked_on_gil_ns: int
    running_unlocked_ns: int
    blocked_other_ns: int
    top_wait: Location | None = None

    @property
    def waiting_ns(self) -> int:
        return self.blocked_on_gil_ns + self.running_unlocked_ns

    @property
    def wait_share(self) -> float:
        return self.waiting_ns / self.total_ns if self.total_ns else 0.0

    @property
    def hold_share(self) -> float:
        return self.holding_ns / self.total_ns if self.total_ns else 0.0

    def to_dict(self) -> dict[str, Any]:
        loc = self.top_wait
        return {
            "tid": self.tid,
            "name": self.name,
            "total_ns": self.total_ns,
            "holding_ns": self.holding_ns,
            "blocked_on_gil_ns": self.blocked_on_gil_ns,
            "running_unlocked_ns": self.running_unlocked_ns,
            "blocked_other_ns": self.blocked_other_ns,
            "top_wait": [loc.file, loc.line, loc.function] if loc else None,
        }


def _has_gil_flags(profile: Profile) -> bool:
    """Whether the recorder marked blocked samples (profiles from before FLAG_BLOCKED did not)."""
    flags = profile.flags
    idle = (flags & FLAG_IDLE) != 0
    return not idle.any() or bool(((flags & (FLAG_BLOCKED | FLAG_GIL_WAIT)) != 0).any())


def _leaf(profile: Profile, stack_index: int) -> Location | None:
    stack = profile.stacks[stack_index]
    if not stack:
        return None
    frame = profile.frames[stack[-1]]
    return Location(frame.file, frame.line, frame.function)


def gil_contention(profile: Profile) -> list[GilThread]:
    """Per-thread GIL use of a wall-mode profile, most waiting first.

    InvalidArgument for a cpu-mode profile (it has no samples of threads that wait) or one
    recorded before the C core marked blocked samples.
    """
    if profile.meta.mode != "wall":
        raise InvalidArgument("GIL contention needs a wall-mode profile (aether profile --mode wall)")
    if not _has_gil_flags(profile):
        raise InvalidArgument("this profile was recorded without GIL-wait flags (an older aether-native)")
    flags = profile.flags
    weight = profile.weight_ns
    holding = (flags & FLAG_HOLDS_GIL) != 0
    on_gil = (flags & FLAG_GIL_WAIT) != 0
    blocked = (flags & FLAG_BLOCKED) != 0
    unlocked = ~holding & ~blocked
    other = blocked & ~on_gil
    out: list[GilThread] = []
    for tid in profile.thread_ids():
        mine = profile.tid == tid
        if not mine.any():
            continue
        waiting = mine & (on_gil | unlocked)
        top: Location | None = None
        if waiting.any():
            stacks, inverse = np.unique(profile.stack[waiting], return_inverse=True)
            sums = np.bincount(inverse.ravel(), weights=weight[waiting])
            top = _leaf(profile, int(stacks[int(np.argmax(sums))]))
        out.append(
            GilThread(
                tid=tid,
                name=profile.threads[tid].name,
                total_ns=int(weight[mine].sum()),
                holding_ns=int(weight[mine & holding].sum()),
                blocked_on_gil_ns=int(weight[mine & on_gil].sum()),
                running_unlocked_ns=int(weight[mine & unlocked].sum()),
                blocked_other_ns=int(weight[mine & other].sum()),
                top_wait=top,
            )
        )
    out.sort(key=lambda t: (-t.waiting_ns, t.tid))
    return out


def findings(
    profile: Profile, *, max_wait_share: float = DEFAULT_MAX_WAIT_SHARE, min_wall: float = 0.05
) -> list[Finding]:
    """A ``gil.contention`` Finding per thread that waited for the GIL over ``max_wait_share`` of
    its time (threads sampled for under ``min_wall`` seconds are not judged). For a profile that
    cannot tell (cpu mode, or an old recording) one finding with ``evaluated=False`` says why."""
    if not 0 <= float(max_wait_share) <= 1:
        raise InvalidArgument(f"max_wait_share must be between 0 and 1, got {max_wait_share!r}")
    if not float(min_wall) >= 0:
        raise InvalidArgument(f"min_wall must be >= 0 seconds, got {min_wall!r}")
    try:
        threads = gil_contention(profile)
    except InvalidArgument as exc:
        return [
            Finding(
                rule=RULE_GIL,
                title="GIL contention not evaluated",
                severity="info",
                message=str(exc),
                evaluated=False,
            )
        ]
    out: list[Finding] = []
    for t in threads:
        if t.total_ns < min_wall * 1e9 or t.wait_share <= max_wait_share:
            continue
        out.append(
            Finding(
                rule=RULE_GIL,
                title=f"Thread {t.name} waits for the GIL",
                severity="warning",
                message=f"thread {t.name} waited for the GIL {t.wait_share:.0%} of its time "
                f"(held it {t.hold_share:.0%}; threshold {max_wait_share:.0%})",
                measured=t.wait_share * 100,
                threshold=max_wait_share * 100,
                unit="%",
                suggestions=(
                    "CPU-bound Python threads take turns on the GIL: use processes "
                    "(multiprocessing, ProcessPoolExecutor) for parallel CPU work",
                    "move the hot loop into code that releases the GIL (numpy, a C extension)",
                    "on Python 3.13t (free-threaded) the GIL can be disabled",
                ),
                location=t.top_wait,
                evidence={
                    "tid": t.tid,
                    "wall_ms": t.total_ns / 1e6,
                    "holding_ms": t.holding_ns / 1e6,
                    "blocked_on_gil_ms": t.blocked_on_gil_ns / 1e6,
                    "running_without_gil_ms": t.running_unlocked_ns / 1e6,
                    "blocked_elsewhere_ms": t.blocked_other_ns / 1e6,
                },
            )
        )
    return out
