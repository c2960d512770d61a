"""The base profile's shares laid over the new profile's call paths, for the differential view.

The page draws the *new* profile (widths are its weights) and colours each node by how its share
changed: ``new share (of the current selection) - base share`` in percentage points, red where it
grew and blue where it shrank. This module ships the base side: per node the base profile's
inclusive share of the same path (all base threads merged), and per function its self and total
share. Base weight on paths the new profile no longer has cannot be drawn; its share is
``gone_pct``.
"""

from __future__ import annotations

from typing import Any

from aether_perf.analysis.diff import ProfileDiff
from aether_perf.report.html.calltrie import PathTrie

__all__ = ["build_diff_overlay"]

_DIGITS = 6


def build_diff_overlay(diff: ProfileDiff, trie: PathTrie, base_title: str) -> dict[str, Any]:
    """JSON-ready base shares for the nodes and functions of ``trie`` (the new profile's)."""
    node_pct = [0.0] * len(trie)
    node_pct[0] = 100.0 if diff.base_total_ns else 0.0
    gone = 0.0
    for entry in diff.paths:
        if not entry.base_ns:
            continue
        node = 0
        for key in entry.path:
            index = trie.function_index.get(key)
            child = None if index is None else trie.children.get((node, index))
            if child is None:
                gone += entry.base_pct
                break
            node = child
            node_pct[node] += entry.base_pct
    self_pct = [0.0] * len(trie.functions)
    total_pct = [0.0] * len(trie.functions)
    for function in diff.functions:
        found = trie.function_index.get(function.key)
        if found is not None:
            self_pct[found] = function.base_self_pct
            total_pct[found] = function.base_total_pct
    return {
        "title": base_title,
        "total_ns": diff.base_total_ns,
        "samples": diff.base_samples,
        "node_pct": [round(p, _DIGITS) for p in node_pct],
        "self_pct": [round(p, _DIGITS) for p in self_pct],
        "total_pct": [round(p, _DIGITS) for p in total_pct],
        "gone_pct": round(gone, _DIGITS),
    }
