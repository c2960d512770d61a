"""Numbers as the benchmark reports print them (shared by the text, markdown and HTML reports)."""

from __future__ import annotations

import math

from aether_perf.bench.comparison import Comparison

_UNITS = ((1e-9, "ns"), (1e-6, "us"), (1e-3, "ms"), (1.0, "s"))


def fmt_time(seconds: float | None) -> str:
    """Seconds per loop with 4 significant digits in the unit that keeps it in [1, 1000)."""
    if seconds is None or not math.isfinite(seconds):
        return "-"
    scale, unit = _UNITS[0]
    for candidate_scale, candidate_unit in _UNITS:
        if abs(seconds) >= candidate_scale:
            scale, unit = candidate_scale, candidate_unit
    return f"{seconds / scale:.4g} {unit}"


def fmt_interval(low: float | None, high: float | None) -> str:
    """``8.58-9.35 us``: both ends in the unit of the upper one."""
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return "-"
    number, unit = fmt_time(high).split(" ")
    scale = high / float(number) if float(number) else 1.0
    return f"{low / scale:.4g}-{number} {unit}"


def fmt_ratio(c: Comparison) -> str:
    """``x1.302 [1.281-1.330]``, or ``-``."""
    if c.ratio is None:
        return "-"
    interval = f" [{c.ci_low:.3f}-{c.ci_high:.3f}]" if c.ci_low is not None and c.ci_high is not None else ""
    return f"x{c.ratio:.3f}{interval}"


def fmt_pct(fraction: float | None) -> str:
    if fraction is None or not math.isfinite(fraction):
        return "-"
    return f"{100 * fraction:.1f}%"


def fmt_p(p: float | None) -> str:
    return "-" if p is None else f"{p:.2g}"
