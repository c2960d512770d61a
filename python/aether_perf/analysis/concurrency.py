"""Lock, scheduling and I/O results attached to a Profile, and the findings drawn from them.

``aether profile --locks --io --sched`` records these beside the samples. They are stored in
``profile.meta.extra["concurrency"]`` (JSON, so the aprof file format is unchanged and older
readers simply ignore the key)::

    {"version": 1,
     "locks": [LockStats.to_dict(), ...] | absent,
     "sched": SchedReport.to_dict() | absent,
     "io": IOReport.to_dict() | absent}

:func:`findings` re-applies the rules (default thresholds) to what is stored, and adds the GIL
rule for wall-mode profiles, so a saved profile is judged the same way on any machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aether_perf import io as io_analysis
from aether_perf import locks as locks_analysis
from aether_perf import sched as sched_analysis
from aether_perf.analysis import gil
from aether_perf.errors import ProfileFormatError
from aether_perf.io.stats import IOReport
from aether_perf.locks.stats import LockStats
from aether_perf.model.finding import Finding
from aether_perf.model.profile import Profile
from aether_perf.sched.monitor import SchedReport

__all__ = ["EXTRA_KEY", "FORMAT_VERSION", "Concurrency", "attach", "findings", "load"]

EXTRA_KEY = "concurrency"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Concurrency:
    """What a profile holds of each recorder (None: not recorded)."""

    locks: list[LockStats] | None = None
    sched: SchedReport | None = None
    io: IOReport | None = None

    @property
    def empty(self) -> bool:
        return self.locks is None and self.sched is None and self.io is None


def attach(
    profile: Profile,
    *,
    locks: Sequence[LockStats] | None = None,
    sched: SchedReport | None = None,
    io: IOReport | None = None,
) -> None:
    """Store the given results in ``profile.meta.extra`` (replacing any stored before)."""
    data: dict[str, Any] = {"version": FORMAT_VERSION}
    if locks is not None:
        data["locks"] = [s.to_dict() for s in locks]
    if sched is not None:
        data["sched"] = sched.to_dict()
    if io is not None:
        data["io"] = io.to_dict()
    profile.meta.extra[EXTRA_KEY] = data


def load(profile: Profile) -> Concurrency:
    """The results stored in ``profile`` (an empty Concurrency when there are none).

    ProfileFormatError when the stored data is malformed or from a newer version.
    """
    raw = profile.meta.extra.get(EXTRA_KEY)
    if raw is None:
        return Concurrency()
    try:
        if not isinstance(raw, dict):
            raise TypeError("not an object")
        version = raw.get("version")
        if version != FORMAT_VERSION:
            raise ProfileFormatError(
                f"the profile's concurrency data has version {version!r}; this aether reads version "
                f"{FORMAT_VERSION}"
            )
        return Concurrency(
            locks=[LockStats.from_dict(s) for s in raw["locks"]] if "locks" in raw else None,
            sched=SchedReport.from_dict(raw["sched"]) if "sched" in raw else None,
            io=IOReport.from_dict(raw["io"]) if "io" in raw else None,
        )
    except ProfileFormatError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ProfileFormatError(f"the profile's concurrency data is malformed: {exc}") from None


def findings(profile: Profile, *, include_gil: bool = True) -> list[Finding]:
    """The lock, scheduling and I/O findings of what ``profile`` holds, and (wall mode) the GIL's.

    Rules that could not be evaluated are left out here (a cpu-mode profile is not judged on the
    GIL); call the packages' ``findings`` for those.
    """
    data = load(profile)
    out: list[Finding] = []
    if data.locks is not None:
        out += locks_analysis.findings(data.locks)
    if data.sched is not None:
        out += sched_analysis.findings(data.sched)
    if data.io is not None:
        out += io_analysis.findings(data.io)
    if include_gil and profile.meta.mode == "wall" and len(profile):
        out += [f for f in gil.findings(profile) if f.evaluated]
    return out
