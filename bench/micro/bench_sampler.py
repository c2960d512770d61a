"""The sampler's cost: a fixed workload with no sampler, under a 10 kHz cpu-mode sampler (start,
run, stop and build the Profile inside each call), and an idle start/stop cycle.

``sampled - unsampled - start_stop`` is what the samples of one call cost (the per-sample cost
times about 10 samples) plus draining them into a Profile; a regression in either shows up as
``workload_10khz`` getting slower while the other two do not.
"""

from __future__ import annotations

from _workloads import spin
from aether_perf.bench import group

from aether_native import Sampler

WORK = 30_000  # about 1 ms of pure-Python work per call on the reference machine


def unsampled() -> int:
    return spin(WORK)


def workload_10khz() -> object:
    sampler = Sampler(interval="100us", mode="cpu")
    sampler.start()
    spin(WORK)
    return sampler.stop()


def start_stop() -> object:
    sampler = Sampler(interval="100us", mode="cpu")
    sampler.start()
    return sampler.stop()


with group("sampler") as g:
    g.add("unsampled", unsampled)
    g.add("workload_10khz", workload_10khz)
    g.add("start_stop", start_stop)
