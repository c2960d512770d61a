"""Comparing two runs: which benchmarks got slower, with what confidence, and what we could see.

Per benchmark, on the per-process medians of each side: the ratio ``median(head) / median(base)``
with a bootstrap 95% interval, a two-sided Mann-Whitney U test, and the minimum detectable change
at this noise level. Across the run the p-values are Holm-adjusted (the more benchmarks, the more
chances for noise to look like a change). A benchmark is a **regression** only when

- the adjusted p-value is below ``alpha`` (significant), and
- the whole 95% interval of the ratio lies above ``1 + threshold``: not only the point estimate,
  so that a change is *confirmed* to matter. On a shared machine per-process medians of identical
  code differ by 5-10%; requiring the interval (not the estimate) beyond the threshold is what
  keeps identical code from being flagged, at the price of needing a change somewhat larger than
  the threshold (plus the minimum detectable change) to be sure of catching it;

an **improvement** mirrors that. When the sample sizes cannot reach significance at all (too few
processes for the exact U test, asv's p_min rule) the verdict says so instead of "no change".
An optional counter metric (instructions per loop, when the workers had a counter) is shown beside
the time ratio as a second opinion; it does not change the verdict.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from aether_perf.bench.results import Suite
from aether_perf.bench.stats import (
    bootstrap_ratio_ci,
    holm,
    mann_whitney_u,
    median,
    min_attainable_p,
    min_detectable_change,
)
from aether_perf.model.finding import Finding

__all__ = ["Comparison", "ComparisonReport", "Verdict", "compare", "identity_warnings"]

Verdict = Literal["regression", "improvement", "no change", "insufficient data", "new", "missing"]


@dataclass
class Comparison:
    id: str
    verdict: Verdict
    base_median: float | None = None
    head_median: float | None = None
    ratio: float | None = None  #: head / base: above 1 is slower
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    min_detectable: float | None = None  #: relative change detectable with 80% power
    significant: bool = False
    instructions_ratio: float | None = None
    base_processes: int = 0
    head_processes: int = 0


@dataclass
class ComparisonReport:
    base_name: str
    head_name: str
    threshold: float
    alpha: float
    comparisons: list[Comparison]
    warnings: list[str] = field(default_factory=list)

    @property
    def regressions(self) -> list[Comparison]:
        return [c for c in self.comparisons if c.verdict == "regression"]

    def to_document(self) -> dict[str, Any]:
        return {
            "base": self.base_name,
            "head": self.head_name,
            "threshold": self.threshold,
            "alpha": self.alpha,
            "warnings": list(self.warnings),
            "benchmarks": [_finite(asdict(c)) for c in self.comparisons],
        }

    def findings(self) -> list[Finding]:
        """Confirmed regressions as :class:`Finding` objects (rule ``bench.regression``)."""
        out = []
        for c in self.regressions:
            assert c.ratio is not None and c.ci_low is not None and c.ci_high is not None
            out.append(
                Finding(
                    rule="bench.regression",
                    title=f"{c.id} is {100 * (c.ratio - 1):.1f}% slower",
                    severity="error",
                    message=(
                        f"median time x{c.ratio:.3f} (95% CI {c.ci_low:.3f}-{c.ci_high:.3f}, "
                        f"adjusted p={c.p_adjusted:.2g}) against {self.base_name}"
                    ),
                    measured=c.ratio,
                    threshold=1 + self.threshold,
                    unit="ratio",
                )
            )
        return out


def _finite(data: dict[str, Any]) -> dict[str, Any]:
    """JSON has no infinity: an undetectable change is written as null."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in data.items()}


def identity_warnings(base: Suite, head: Suite) -> list[str]:
    """Why these two runs may not be comparable: another machine, another Python."""
    warnings = []
    a, b = base.identity, head.identity
    if a.machine_id != b.machine_id:
        warnings.append(
            f"baseline {base.name!r} was measured on another machine ({a.machine_id}, this is "
            f"{b.machine_id}): differences may be the machine's"
        )
    if a.python_id != b.python_id or a.python_version != b.python_version:
        warnings.append(
            f"baseline {base.name!r} was measured with {a.python_implementation} {a.python_version}, "
            f"this run with {b.python_implementation} {b.python_version}"
        )
    return warnings


def compare(
    base: Suite, head: Suite, threshold: float = 0.05, alpha: float = 0.05, seed: int = 0
) -> ComparisonReport:
    """Compare ``head`` against ``base`` (see the module doc for the decision rule)."""
    base_by_id, head_by_id = base.by_id(), head.by_id()
    comparisons: list[Comparison] = []
    tested: list[Comparison] = []
    pvalues: list[float] = []
    for bench_id, result in head_by_id.items():
        other = base_by_id.get(bench_id)
        if other is None or not other.process_medians():
            comparisons.append(Comparison(bench_id, "new", head_median=median(result.process_medians())))
            continue
        a, b = other.process_medians(), result.process_medians()
        low, high = bootstrap_ratio_ci(a, b, seed=seed)
        _, p = mann_whitney_u(a, b)
        ratio = median(b) / median(a)
        counted_a, counted_b = other.instructions_per_loop(), result.instructions_per_loop()
        item = Comparison(
            bench_id,
            "no change",
            base_median=median(a),
            head_median=median(b),
            ratio=ratio,
            ci_low=low,
            ci_high=high,
            p_value=p,
            min_detectable=min_detectable_change(a, b, alpha),
            instructions_ratio=median(counted_b) / median(counted_a) if counted_a and counted_b else None,
            base_processes=len(a),
            head_processes=len(b),
        )
        comparisons.append(item)
        tested.append(item)
        pvalues.append(p)
    for item, adjusted in zip(tested, holm(pvalues), strict=True):
        assert item.ratio is not None and item.ci_low is not None and item.ci_high is not None
        item.p_adjusted = adjusted
        slower = item.ci_low > 1.0
        faster = item.ci_high < 1.0
        item.significant = adjusted < alpha and (slower or faster)
        if item.significant and item.ci_low > 1 + threshold:
            item.verdict = "regression"
        elif item.significant and item.ci_high < 1 / (1 + threshold):
            item.verdict = "improvement"
        elif min_attainable_p(item.base_processes, item.head_processes) >= alpha:
            item.verdict = "insufficient data"
    for bench_id in base_by_id.keys() - head_by_id.keys():
        comparisons.append(
            Comparison(
                bench_id, "missing", base_median=median(base_by_id[bench_id].process_medians() or [math.nan])
            )
        )
    return ComparisonReport(
        base.name, head.name, threshold, alpha, comparisons, identity_warnings(base, head)
    )
