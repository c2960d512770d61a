"""Per-thread sums."""

from __future__ import annotations

import numpy as np

from aether_perf.analysis.selection import group_sum
from aether_perf.model.profile import Profile

__all__ = ["thread_order", "thread_sample_counts", "thread_totals"]


def thread_totals(profile: Profile) -> dict[int, int]:
    """Summed weight (ns) per thread id, for every thread of the profile (0 if it has no samples)."""
    tids, inverse = np.unique(profile.tid, return_inverse=True)
    sums = group_sum(inverse.ravel(), profile.weight_ns, len(tids)).tolist()
    found = dict(zip(tids.tolist(), sums, strict=True))
    return {tid: found.get(tid, 0) for tid in profile.thread_ids()}


def thread_sample_counts(profile: Profile) -> dict[int, int]:
    """Number of samples per thread id, for every thread of the profile (0 if it has none)."""
    tids, counts = np.unique(profile.tid, return_counts=True)
    found = dict(zip(tids.tolist(), counts.tolist(), strict=True))
    return {tid: found.get(tid, 0) for tid in profile.thread_ids()}


def thread_order(profile: Profile) -> list[int]:
    """The profile's thread ids in display order: the main thread first, then ascending."""
    tids = profile.thread_ids()
    main = profile.main_thread_id()
    if main is not None:
        tids.remove(main)
        tids.insert(0, main)
    return tids
