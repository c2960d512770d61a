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
from aether_perf.model.meta import PROFILE_MODES, ProfileMeta
from aether_perf.model.span import Span

# Profile, HeapSnapshot and MemorySeries need numpy: they are imported on first use, so that a
# recorder importing a light part of the model (aether_native.counters -> model.counters, the
# sampler -> frame flags) does not load numpy, and its BLAS threads, into the program it records.
_LAZY = {
    "HEAP_MODES": "heap",
    "Growth": "heap",
    "HeapMeta": "heap",
    "HeapSnapshot": "heap",
    "HeapSummary": "heap",
    "HotSpot": "heap",
    "load_heap": "heap",
    "MemorySeries": "memory_series",
    "SeriesPeak": "memory_series",
    "MAIN_THREAD_NAME": "profile",
    "Profile": "profile",
    "load": "profile",
    #: ``aether_perf.load_profile``: ``aether_perf.load`` is the load-testing package.
    "load_profile": "profile",
}

TYPE_CHECKING = False
if TYPE_CHECKING:
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
    from aether_perf.model.profile import MAIN_THREAD_NAME, Profile, load

    load_profile = load


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aether_perf.model' has no attribute {name!r}")
    import importlib

    attribute = "load" if name == "load_profile" else name
    value = getattr(importlib.import_module(f"aether_perf.model.{module}"), attribute)
    globals()[name] = value
    return value


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
