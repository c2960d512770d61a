"""Selecting samples and summing them per stack: the first step of every analysis.

Analyses never walk samples one by one: they sum weights and counts per stack id with numpy
(``np.bincount``) and then walk the distinct stacks, so a million samples over a few hundred
stacks cost one pass of numpy and a few hundred Python steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from aether_perf.errors import InvalidArgument
from aether_perf.model.frame import FLAG_IDLE
from aether_perf.model.profile import Profile

__all__ = ["StackTotals", "group_sum", "select_samples", "stack_totals"]

# Below this total, float64 sums of integer weights are exact (every partial sum < 2**53).
_EXACT_FLOAT_LIMIT = 2**53


def group_sum(groups: npt.NDArray[Any], values: npt.NDArray[np.int64], size: int) -> npt.NDArray[np.int64]:
    """Exact integer sum of ``values`` per group id (``0 <= groups < size``)."""
    total = int(values.sum(dtype=np.int64)) if values.size else 0
    if total < _EXACT_FLOAT_LIMIT:
        sums = np.bincount(groups, weights=values, minlength=size)
        return np.rint(sums).astype(np.int64)
    exact = np.zeros(size, dtype=np.int64)  # pragma: no cover - more than 104 days of weight
    np.add.at(exact, groups, values)  # pragma: no cover
    return exact  # pragma: no cover


def select_samples(
    profile: Profile, *, thread: int | None = None, include_idle: bool = True
) -> npt.NDArray[np.bool_] | None:
    """A boolean mask of the samples of ``thread`` (all threads if None), without idle ones if asked.

    Returns None when every sample is selected. Raises InvalidArgument for an unknown thread.
    """
    mask: npt.NDArray[np.bool_] | None = None
    if thread is not None:
        if thread not in profile.threads:
            known = ", ".join(str(t) for t in profile.thread_ids()[:10]) or "none"
            raise InvalidArgument(f"thread {thread} is not in the profile (threads: {known})")
        mask = profile.tid == thread
    if not include_idle:
        busy = (profile.flags & FLAG_IDLE) == 0
        mask = busy if mask is None else mask & busy
    return mask


@dataclass(frozen=True)
class StackTotals:
    """Per-stack sums over the selected samples (arrays indexed by stack id)."""

    weight_ns: npt.NDArray[np.int64]
    samples: npt.NDArray[np.int64]
    total_ns: int
    total_samples: int

    def present(self) -> list[int]:
        """Ids of the stacks with at least one selected sample, ascending."""
        ids: list[int] = np.flatnonzero(self.samples).tolist()
        return ids


def stack_totals(profile: Profile, mask: npt.NDArray[np.bool_] | None = None) -> StackTotals:
    """Sum weight and sample count per stack over the samples ``mask`` selects (all if None)."""
    stack = profile.stack if mask is None else profile.stack[mask]
    weight = profile.weight_ns if mask is None else profile.weight_ns[mask]
    size = len(profile.stacks)
    samples = np.bincount(stack, minlength=size).astype(np.int64)
    return StackTotals(
        weight_ns=group_sum(stack, weight, size),
        samples=samples,
        total_ns=int(weight.sum(dtype=np.int64)),
        total_samples=int(stack.shape[0]),
    )
