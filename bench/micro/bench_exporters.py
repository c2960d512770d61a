"""The exporters on one synthetic cpu profile of 2,000 samples (500 distinct stacks, 200
functions, two threads), each writing to memory: speedscope, collapsed stacks, pprof, Chrome trace."""

from __future__ import annotations

import io

from _workloads import synthetic_profile
from aether_perf.bench import group
from aether_perf.export import chrome_trace, collapsed, pprof, speedscope


def to_speedscope(profile: object) -> int:
    out = io.StringIO()
    speedscope.write(profile, out)  # type: ignore[arg-type]
    return out.tell()


def to_collapsed(profile: object) -> int:
    out = io.StringIO()
    collapsed.write(profile, out)  # type: ignore[arg-type]
    return out.tell()


def to_pprof(profile: object) -> int:
    return len(pprof.to_bytes(profile))  # type: ignore[arg-type]


def to_chrome_trace(profile: object) -> int:
    out = io.StringIO()
    chrome_trace.write(out, profile=profile)  # type: ignore[arg-type]
    return out.tell()


with group("export", setup=synthetic_profile) as g:
    g.add("speedscope", to_speedscope)
    g.add("collapsed", to_collapsed)
    g.add("pprof", to_pprof)
    g.add("chrome_trace", to_chrome_trace)
