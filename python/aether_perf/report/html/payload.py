"""The data embedded in the HTML report: everything the page needs, aggregated, never per sample.

Layout of the JSON object (all times in nanoseconds, integers)::

    version      1
    title        the page title
    meta         mode, interval (s), duration (s), start_time (Unix s), python_version, program,
                 samples, dropped, total_ns
    functions    [[function, file, first_line], ...]
    nodes        {"parent": [...], "func": [...]}: the call-path trie (see calltrie); node 0 is the root
    threads      [{"tid", "name", "total_ns", "samples"}, ...] in display order (main thread first)
    timeline     the per (thread, time cell) sums (see timeline)
    spans        the span track (see spantrack), or null
    diff         the base profile's shares (see diffoverlay), or null
    analyses     findings and lock/thread/I/O/GIL tables (see analyses), or null

A sample with no Python frames counts at the root node (the root's self time).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from aether_perf.analysis.diff import diff_profiles
from aether_perf.analysis.selection import stack_totals
from aether_perf.analysis.threads import thread_order, thread_sample_counts, thread_totals
from aether_perf.model.profile import Profile
from aether_perf.model.span import Span
from aether_perf.report.html.analyses import build_analyses
from aether_perf.report.html.calltrie import build_trie
from aether_perf.report.html.diffoverlay import build_diff_overlay
from aether_perf.report.html.spantrack import build_span_track
from aether_perf.report.html.timeline import build_timeline

__all__ = ["PAYLOAD_VERSION", "build_payload", "default_title"]

PAYLOAD_VERSION = 1


def default_title(profile: Profile) -> str:
    """``aether <mode> profile`` and, when known, ``of <program>``."""
    title = f"aether {profile.meta.mode} profile"
    return title + (f" of {profile.meta.program}" if profile.meta.program else "")


def build_payload(
    profile: Profile,
    *,
    title: str | None = None,
    base: Profile | None = None,
    spans: Sequence[Span] | None = None,
) -> dict[str, Any]:
    """The JSON-ready object described in the module doc."""
    totals = stack_totals(profile)
    trie = build_trie(profile, totals.present())
    node_of_sample = trie.leaf_of_stack[profile.stack] if len(profile) else np.zeros(0, dtype=np.int32)
    order = thread_order(profile)
    weights = thread_totals(profile)
    counts = thread_sample_counts(profile)
    timeline = build_timeline(profile, node_of_sample, order, len(trie))
    meta = profile.meta
    payload: dict[str, Any] = {
        "version": PAYLOAD_VERSION,
        "title": title if title is not None else default_title(profile),
        "meta": {
            "mode": meta.mode,
            "interval": meta.interval,
            "duration": meta.duration,
            "start_time": meta.start_time,
            "python_version": meta.python_version,
            "program": meta.program,
            "samples": len(profile),
            "dropped": meta.dropped,
            "total_ns": totals.total_ns,
        },
        "functions": [list(key) for key in trie.functions],
        "nodes": {"parent": trie.parent, "func": trie.func},
        "threads": [
            {"tid": tid, "name": profile.threads[tid].name, "total_ns": weights[tid], "samples": counts[tid]}
            for tid in order
        ],
        "timeline": timeline,
        "spans": build_span_track(profile, spans, timeline["span_ns"]) if spans else None,
        "diff": None,
        "analyses": build_analyses(profile),
    }
    if base is not None:
        payload["diff"] = build_diff_overlay(diff_profiles(base, profile), trie, default_title(base))
    return payload
