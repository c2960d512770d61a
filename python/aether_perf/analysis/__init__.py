"""Analyses: pure functions over the model that return data and never print."""

from aether_perf.analysis.bottlenecks import Thresholds, bottlenecks
from aether_perf.analysis.calltree import ROOT_NAME, CallNode, call_tree
from aether_perf.analysis.selection import StackTotals, select_samples, stack_totals
from aether_perf.analysis.threads import thread_order, thread_sample_counts, thread_totals
from aether_perf.analysis.top import FunctionStat, function_stats, top_functions

__all__ = [
    "ROOT_NAME",
    "CallNode",
    "FunctionStat",
    "StackTotals",
    "Thresholds",
    "bottlenecks",
    "call_tree",
    "function_stats",
    "select_samples",
    "stack_totals",
    "thread_order",
    "thread_sample_counts",
    "thread_totals",
    "top_functions",
]
