"""Instrumentation profiling: time chosen functions and blocks, per name, and trace them as spans.

::

    from aether_perf.instrumentation import instrument, profile_scope, record_duration

    @instrument                      # or @instrument(name="db.query")
    def query(sql): ...

    with profile_scope("parse"):     # or: async with profile_scope("parse"):
        ...

    record_duration("upstream", 0.012)

    stats("db.query").p99            # seconds; registry() has every name; reset() forgets
    report()                         # a table of every name

    with trace() as t:               # while active, every timed call is also a Span
        query("select 1")
    t.spans                          # list[aether_perf.model.Span]
    t.write_chrome_trace("trace.json")

Per name: count, total, min, max, mean and p50/p90/p99 from a streaming log-linear histogram
(fixed memory, within 1 % of the exact percentile). Thread-safe without a lock on the hot path
(per-thread accumulators merged on read) and asyncio-aware (spans follow tasks, not threads).
This package imports neither numpy nor rich until a report or a span list is asked for, and
asyncio only when a trace starts.
"""

from aether_perf.instrumentation.histogram import Histogram
from aether_perf.instrumentation.metrics import Stats, registry, reset, stats
from aether_perf.instrumentation.table import SORT_KEYS, report
from aether_perf.instrumentation.timing import instrument, profile_scope, record_duration
from aether_perf.instrumentation.tracing import Trace, active_trace, start_trace, stop_trace, trace

__all__ = [
    "SORT_KEYS",
    "Histogram",
    "Stats",
    "Trace",
    "active_trace",
    "instrument",
    "profile_scope",
    "record_duration",
    "registry",
    "report",
    "reset",
    "start_trace",
    "stats",
    "stop_trace",
    "trace",
]
