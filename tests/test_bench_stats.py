"""aether_perf.bench.stats against reference values (scipy 1.x, numpy) and closed forms."""

from __future__ import annotations

import math
import random

import pytest
from aether_perf.bench import stats
from aether_perf.bench.comparison import compare
from aether_perf.bench.results import BenchmarkResult, Identity, ProcessRun, Suite


def test_mann_whitney_exact_matches_scipy() -> None:
    # scipy.stats.mannwhitneyu(head, base, method="exact"): U=35, p=0.05128205128205128
    u, p = stats.mann_whitney_u([1.0, 2.0, 3.0, 4.0, 5.0, 6.5], [3.1, 4.1, 5.1, 6.1, 7.1, 8.1, 9.1])
    assert u == 35
    assert p == pytest.approx(0.05128205128205128, rel=1e-12)
    # complete separation of 6 vs 6: the smallest two-sided p, 2 / C(12, 6)
    u, p = stats.mann_whitney_u([10, 11, 12, 13, 14, 15], [16, 17, 18, 19, 20, 21])
    assert (u, p) == (36, pytest.approx(2 / 924))
    assert stats.min_attainable_p(6, 6) == pytest.approx(0.0021645021645021645)


def test_mann_whitney_ties_use_normal_approximation_like_scipy() -> None:
    # scipy method="asymptotic", use_continuity=True: U=40.5, p=0.16264521620903183
    base = [1, 2, 2, 3, 5, 6.5, 7, 7]
    head = [3, 4.1, 5.1, 6.1, 7, 8.1, 9.1]
    u, p = stats.mann_whitney_u(base, head)
    assert u == 40.5
    assert p == pytest.approx(0.16264521620903183, rel=1e-9)


def test_u_distribution_is_the_count_of_arrangements() -> None:
    for n, m in ((1, 1), (3, 4), (6, 6), (10, 7)):
        counts = stats._u_distribution(n, m)
        assert sum(counts) == math.comb(n + m, n)
        assert counts == counts[::-1]  # U and n*m - U are equally likely


def test_holm_adjustment() -> None:
    # sorted p: 0.005 (x4), 0.01 (x3), 0.03 (x2), 0.04 (x1), made monotone
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([]) == []


def test_quantiles_iqr_and_tukey_outliers() -> None:
    values = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5]  # numpy.quantile: 2.5, 4, 5
    assert stats.quantile(values, 0.25) == 2.5
    assert stats.median(values) == 4
    assert stats.quantile(values, 0.75) == 5
    marked = stats.tukey_outliers([*values, 100.0])
    assert marked == [False] * len(values) + [True]


def test_bootstrap_interval_covers_the_median_and_narrows_with_more_data() -> None:
    rng = random.Random(5)
    small = [rng.gauss(10.0, 1.0) for _ in range(8)]
    large = [rng.gauss(10.0, 1.0) for _ in range(200)]
    low_s, high_s = stats.bootstrap_ci(small)
    low_l, high_l = stats.bootstrap_ci(large)
    assert low_s <= stats.median(small) <= high_s
    assert low_l < 10.0 < high_l
    assert high_l - low_l < high_s - low_s
    low, high = stats.bootstrap_ratio_ci([10.0, 10.1, 9.9, 10.05, 9.95], [13.0, 13.1, 12.9, 13.05, 12.95])
    assert 1.28 < low <= 1.3 <= high < 1.32


def test_minimum_detectable_change_follows_the_formula() -> None:
    base = [1.0, 1.1, 0.9, 1.0, 1.05, 0.95]
    cv = stats.coefficient_of_variation(base)
    expected = (1.959963984540054 + 0.8416212335729143) * cv * math.sqrt(2 / 6)
    assert stats.min_detectable_change(base, base) == pytest.approx(expected)
    assert stats.min_detectable_change([1.0], base) == math.inf


def test_summary_uses_process_medians_for_the_centre() -> None:
    summary = stats.summarize([[1.0, 1.0, 9.0], [2.0, 2.0, 2.0], [3.0, 3.0, 3.0]])
    assert summary.median == 2.0  # medians 1, 2, 3
    assert summary.values == 9 and summary.processes == 3
    assert summary.min == 1.0 and summary.max == 9.0
    assert summary.outliers == 1  # the 9.0
    assert summary.ci_low <= 2.0 <= summary.ci_high


def _suite(name: str, per_benchmark: dict[str, list[float]], machine: str = "m") -> Suite:
    benches = [
        BenchmarkResult(
            bench_id,
            bench_id,
            None,
            "f.py",
            10,
            [ProcessRun(i + 1, [v], [0], [0], [False]) for i, v in enumerate(medians)],
        )
        for bench_id, medians in per_benchmark.items()
    ]
    identity = Identity(machine, "h", "cpu", 2, "Linux", "CPython", "3.12.1", "python3")
    return Suite(name, "2026-01-01T00:00:00+00:00", identity, {}, benches)


def test_comparison_verdicts_on_known_medians() -> None:
    base = _suite(
        "base",
        {
            "slower": [1.00, 1.01, 0.99, 1.02, 0.98, 1.00, 1.01, 0.99],
            "faster": [1.00, 1.01, 0.99, 1.02, 0.98, 1.00, 1.01, 0.99],
            "same": [1.00, 1.01, 0.99, 1.02, 0.98, 1.00, 1.01, 0.99],
            "slightly": [1.00, 1.01, 0.99, 1.02, 0.98, 1.00, 1.01, 0.99],
            "gone": [1.0, 1.0],
        },
    )
    head = _suite(
        "head",
        {
            "slower": [1.30, 1.31, 1.29, 1.32, 1.28, 1.30, 1.31, 1.29],
            "faster": [0.70, 0.71, 0.69, 0.72, 0.68, 0.70, 0.71, 0.69],
            "same": [1.005, 1.015, 0.995, 1.025, 0.985, 1.0, 1.01, 0.99],
            "slightly": [1.03, 1.04, 1.02, 1.05, 1.01, 1.03, 1.04, 1.02],  # significant, but 3% < 5%
            "added": [1.0, 1.0],
        },
    )
    report = compare(base, head, threshold=0.05)
    verdicts = {c.id: c.verdict for c in report.comparisons}
    assert verdicts == {
        "slower": "regression",
        "faster": "improvement",
        "same": "no change",
        "slightly": "no change",
        "added": "new",
        "gone": "missing",
    }
    by_id = {c.id: c for c in report.comparisons}
    assert by_id["slower"].ratio == pytest.approx(1.30, abs=0.005)
    assert by_id["slightly"].significant
    assert report.warnings == []
    assert [f.measured for f in report.findings()] == [by_id["slower"].ratio]


def test_too_few_processes_say_so_and_other_machines_warn() -> None:
    base = _suite("base", {"x": [1.0, 1.01, 0.99]}, machine="elsewhere")
    head = _suite("head", {"x": [2.0, 2.01, 1.99]})
    report = compare(base, head)
    (c,) = report.comparisons
    assert c.verdict == "insufficient data"  # 3 vs 3: the smallest p is 0.1
    assert len(report.warnings) == 1 and "another machine" in report.warnings[0]
