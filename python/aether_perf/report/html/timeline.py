"""Samples summed per (thread, time bucket, call-path node): what the page rebuilds its views from.

The profile's time ``[0, span_ns)`` is cut into :data:`HISTOGRAM_BUCKETS` equal buckets. Per thread
the page gets the weight of each bucket (the timeline histogram, busy and idle apart) and, per
*cell* (``cell_span`` consecutive buckets), a sparse list of ``(node, weight, samples[, idle])``:
the flamegraph of any thread selection and any cell-aligned time range is then a sum over those
lists, never over samples. ``cell_span`` is the smallest divisor of the bucket count that keeps
the number of entries within :data:`CELL_BUDGET`, so a long profile with many distinct stacks
stays a few megabytes while a short one keeps the full time resolution.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from aether_perf.analysis.selection import group_sum
from aether_perf.model.frame import FLAG_IDLE
from aether_perf.model.profile import Profile

__all__ = ["CELL_BUDGET", "HISTOGRAM_BUCKETS", "build_timeline", "profile_span_ns"]

HISTOGRAM_BUCKETS = 200
#: Most ``(thread, cell, idle, node)`` entries shipped before cells widen.
CELL_BUDGET = 150_000
_CELL_SPANS = [d for d in range(1, HISTOGRAM_BUCKETS + 1) if HISTOGRAM_BUCKETS % d == 0]


def profile_span_ns(profile: Profile) -> int:
    """The time the timeline covers: the profile's duration, stretched to hold every sample."""
    span = round(profile.meta.duration * 1e9)
    if len(profile):
        span = max(span, int(profile.time_ns.max()) + 1)
    return max(span, 1)


def _cell_keys(
    thread_index: npt.NDArray[np.int64],
    cell: npt.NDArray[np.int64],
    idle: npt.NDArray[np.int64],
    node: npt.NDArray[np.int64],
    cells: int,
    nodes: int,
) -> npt.NDArray[np.int64]:
    key: npt.NDArray[np.int64] = ((thread_index * cells + cell) * 2 + idle) * nodes + node
    return key


def build_timeline(
    profile: Profile, node_of_sample: npt.NDArray[np.int32], threads: list[int], nodes: int
) -> dict[str, Any]:
    """The JSON-ready timeline of ``profile`` for the threads in display order ``threads``.

    ``node_of_sample`` gives each sample's call-path node (``nodes`` in all). The result holds
    ``span_ns``, ``buckets``, ``cell_span``, ``has_idle`` and ``threads``: one entry per thread
    with ``busy``/``idle`` bucket weights and its cells (``offsets`` into the parallel lists
    ``node``, ``weight``, ``samples`` and, if the profile has idle samples, ``idle``).
    """
    span = profile_span_ns(profile)
    buckets = HISTOGRAM_BUCKETS
    count = len(threads)
    position = {tid: i for i, tid in enumerate(threads)}
    tids, inverse = np.unique(profile.tid, return_inverse=True)
    thread_of_tid = np.array([position[t] for t in tids.tolist()], dtype=np.int64)
    thread_index = thread_of_tid[inverse.ravel()] if len(profile) else np.zeros(0, dtype=np.int64)
    times = np.clip(profile.time_ns, 0, span - 1)
    bucket = (times * buckets) // span
    idle = ((profile.flags & FLAG_IDLE) != 0).astype(np.int64)
    has_idle = bool(idle.any())
    weights = profile.weight_ns

    histogram = group_sum((thread_index * buckets + bucket) * 2 + idle, weights, count * buckets * 2)
    histogram = histogram.reshape(count, buckets, 2)

    node = node_of_sample.astype(np.int64)
    cell_span = _CELL_SPANS[-1]
    unique: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
    inverse_key: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
    for candidate in _CELL_SPANS:
        cells = buckets // candidate
        keys = _cell_keys(thread_index, bucket // candidate, idle, node, cells, nodes)
        unique, inverse_key = np.unique(keys, return_inverse=True)
        cell_span = candidate
        if unique.size <= CELL_BUDGET:
            break
    cells = buckets // cell_span
    entry_weight = group_sum(inverse_key.ravel(), weights, unique.size)
    entry_samples = np.bincount(inverse_key.ravel(), minlength=unique.size)
    entry_node = unique % nodes
    rest = unique // nodes
    entry_idle = rest % 2
    rest //= 2
    entry_cell = rest % cells
    entry_thread = rest // cells
    # Entries are sorted by key, so by thread, then cell: each thread's cells are contiguous.
    first_of_thread = np.searchsorted(entry_thread, np.arange(count + 1))

    result: list[dict[str, Any]] = []
    for index in range(count):
        low, high = int(first_of_thread[index]), int(first_of_thread[index + 1])
        offsets = np.searchsorted(entry_cell[low:high], np.arange(cells + 1))
        thread: dict[str, Any] = {
            "busy": histogram[index, :, 0].tolist(),
            "idle": histogram[index, :, 1].tolist() if has_idle else None,
            "offsets": offsets.tolist(),
            "node": entry_node[low:high].tolist(),
            "weight": entry_weight[low:high].tolist(),
            "samples": entry_samples[low:high].tolist(),
        }
        if has_idle:
            thread["idle_flag"] = entry_idle[low:high].tolist()
        result.append(thread)
    return {
        "span_ns": span,
        "buckets": buckets,
        "cell_span": cell_span,
        "has_idle": has_idle,
        "threads": result,
    }
