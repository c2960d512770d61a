"""Sending profiles to continuous-profiling servers: :mod:`aether_perf.push.pyroscope`."""

from aether_perf.push.pyroscope import PushError, PushResult, push

__all__ = ["PushError", "PushResult", "push"]
