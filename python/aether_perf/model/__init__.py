"""The data model: :class:`Profile` and its parts, and the aprof file format."""

from aether_perf.model.frame import FLAG_HOLDS_GIL, FLAG_IDLE, FLAG_TRUNCATED, Frame, FunctionKey, ThreadInfo
from aether_perf.model.meta import PROFILE_MODES, ProfileMeta
from aether_perf.model.profile import MAIN_THREAD_NAME, Profile, load
from aether_perf.model.span import Span

__all__ = [
    "FLAG_HOLDS_GIL",
    "FLAG_IDLE",
    "FLAG_TRUNCATED",
    "MAIN_THREAD_NAME",
    "PROFILE_MODES",
    "Frame",
    "FunctionKey",
    "Profile",
    "ProfileMeta",
    "Span",
    "ThreadInfo",
    "load",
]

from aether_perf.model.heap import (
    HEAP_MODES,
    Growth,
    HeapMeta,
    HeapSnapshot,
    HeapSummary,
    HotSpot,
    load_heap,
)

__all__ += ["HEAP_MODES", "Growth", "HeapMeta", "HeapSnapshot", "HeapSummary", "HotSpot", "load_heap"]
