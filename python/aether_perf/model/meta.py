"""ProfileMeta: what a profile says about the recording as a whole."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["PROFILE_MODES", "ProfileMeta", "meta_from_dict", "meta_to_dict"]

#: The sampling modes: ``cpu`` weights a sample by the CPU time its thread used since the thread's
#: previous sample, ``wall`` by the wall time since it; ``events`` (counter-triggered sampling on a
#: non-time event, ``extra["trigger"]``) by the number of events, e.g. page faults, not ns.
PROFILE_MODES = ("cpu", "wall", "events")


@dataclass
class ProfileMeta:
    """Metadata of a profile.

    ``interval`` and ``duration`` are seconds, ``start_time`` is Unix epoch seconds.
    ``sample_count`` is the number of samples taken (normally ``len(profile)``; a profile read from
    speedscope, whose runs of equal samples are merged, keeps the original count) and ``dropped``
    how many the recorder had to drop (ring full). ``extra`` holds anything else; it must contain
    only JSON types (str keys; str, int, float, bool, None, list, dict) to survive ``Profile.save``.
    """

    mode: str
    interval: float
    start_time: float
    duration: float
    python_version: str
    sample_count: int
    dropped: int
    program: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "mode": (str,),
    "interval": (int, float),
    "start_time": (int, float),
    "duration": (int, float),
    "python_version": (str,),
    "sample_count": (int,),
    "dropped": (int,),
    "program": (str,),
    "extra": (dict,),
}


def meta_to_dict(meta: ProfileMeta) -> dict[str, Any]:
    """The fields of ``meta`` as a dict (``extra`` is shallow-copied)."""
    return {
        "mode": meta.mode,
        "interval": meta.interval,
        "start_time": meta.start_time,
        "duration": meta.duration,
        "python_version": meta.python_version,
        "sample_count": meta.sample_count,
        "dropped": meta.dropped,
        "program": meta.program,
        "extra": dict(meta.extra),
    }


def meta_from_dict(raw: object) -> ProfileMeta:
    """The ProfileMeta that :func:`meta_to_dict` (through JSON) gave; ValueError if ``raw`` is unfit.

    Unknown keys are ignored; numbers of the float fields become floats.
    """
    if not isinstance(raw, dict):
        raise ValueError("meta is not an object")
    values: dict[str, Any] = {}
    for name, types in _FIELD_TYPES.items():
        value = raw.get(name)
        if isinstance(value, bool) or not isinstance(value, types):
            raise ValueError(f"meta.{name} is missing or of the wrong type")
        if isinstance(value, int) and float in types:
            value = float(value)
        values[name] = value
    return ProfileMeta(**values)
