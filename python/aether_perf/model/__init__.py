"""The data model: :class:`Profile` and its parts, heap snapshots, findings, and the aprof file format."""

from aether_perf.model.counters import CounterReading, EventCount
from aether_perf.model.finding import SEVERITIES, Finding, Location, Severity
from aether_perf.model.frame import (
    FLAG_BLOCKED,
    FLAG_GIL_WAIT,
    FLAG_HOLDS_GIL,
    FLAG_IDLE,
    FLAG_TRUNCATED,
    Frame,
    FunctionKey,
    ThreadInfo,
)
from aether_perf.model.heap import (
    HEAP_MODES,
    Growth,
    HeapMeta,
    HeapSnapshot,
    HeapSummary,
    HotSpot,
    load_heap,
)
from aether_perf.model.memory_series import MemorySeries, SeriesPeak
from aether_perf.model.meta import PROFILE_MODES, ProfileMeta
from aether_perf.model.profile import MAIN_THREAD_NAME, Profile, load
from aether_perf.model.span import Span

#: ``aether_perf.load_profile``: ``aether_perf.load`` is the load-testing package.
load_profile = load

__all__ = [
    "FLAG_BLOCKED",
    "FLAG_GIL_WAIT",
    "FLAG_HOLDS_GIL",
    "FLAG_IDLE",
    "FLAG_TRUNCATED",
    "HEAP_MODES",
    "MAIN_THREAD_NAME",
    "PROFILE_MODES",
    "SEVERITIES",
    "CounterReading",
    "EventCount",
    "Finding",
    "Frame",
    "FunctionKey",
    "Growth",
    "HeapMeta",
    "HeapSnapshot",
    "HeapSummary",
    "HotSpot",
    "Location",
    "MemorySeries",
    "Profile",
    "ProfileMeta",
    "SeriesPeak",
    "Severity",
    "Span",
    "ThreadInfo",
    "load",
    "load_heap",
    "load_profile",
]
