"""k6-style thresholds: parsing (errors name the position) and evaluation against known results."""

from __future__ import annotations

import pytest
from aether_perf.errors import InvalidArgument
from aether_perf.load import (
    LoadTestResult,
    Stage,
    StageResult,
    TransactionStats,
    check_thresholds,
    parse_threshold,
)
from aether_perf.load.histogram import Histogram

MS = 1_000_000


def _result() -> LoadTestResult:
    # "browse": 100 transactions at 1..100 ms; "buy": 50 at 300 ms and 50 errors. 10 s long.
    browse = TransactionStats(
        Histogram.from_values(k * MS for k in range(1, 101)),
        Histogram.from_values(k * MS for k in range(1, 101)),
    )
    buy = TransactionStats(
        Histogram.from_values([300 * MS] * 50), Histogram.from_values([300 * MS] * 50), {"HTTP 500": 50}
    )
    stage = StageResult(Stage("sustained", "sustained", 0.0, 10.0, 5), {"browse": browse, "buy": buy}, 5)
    return LoadTestResult("shop", "closed", "http://127.0.0.1:1", stages=[stage])


@pytest.mark.parametrize(
    ("text", "metric", "op", "value", "txn"),
    [
        ("p95<200ms", "p95", "<", 0.2, None),
        ("p(99.9) <= 1.5s", "p99.9", "<=", 1.5, None),
        ("p95<200", "p95", "<", 0.2, None),  # a bare number is milliseconds, as in k6
        ("errors<1%", "errors", "<", 0.01, None),
        ("error_rate<0.05", "errors", "<", 0.05, None),
        ("rps>=12.5", "rps", ">=", 12.5, None),
        ("raw_p99<250us", "raw_p99", "<", 0.00025, None),
        ("p95[checkout]<3s", "p95", "<", 3.0, "checkout"),
    ],
)
def test_parse(text: str, metric: str, op: str, value: float, txn: str | None) -> None:
    t = parse_threshold(text)
    assert (t.metric, t.op, t.value, t.transaction) == (metric, op, pytest.approx(value), txn)


@pytest.mark.parametrize(
    ("text", "position", "what"),
    [
        ("p95<<200ms", 5, "expected a number"),
        ("p95 200ms", 5, "expected a comparison"),
        ("q95<1s", 1, "expected a metric"),
        ("p95<200xs", 8, "duration unit"),
        ("p101<1s", 2, "between 0 and 100"),
        ("errors<150%", 8, "never be reached"),
        ("p95[buy<1s", 4, "closing"),
    ],
)
def test_syntax_errors_name_the_position(text: str, position: int, what: str) -> None:
    with pytest.raises(InvalidArgument, match=rf"at position {position}: .*{what}"):
        parse_threshold(text)


def test_thresholds_pass_and_fail_on_known_data() -> None:
    outcomes = check_thresholds(
        [
            "p50[browse]<=51ms",
            "p50[browse]<49ms",
            "errors<30%",
            "errors<20%",
            "rps>=20",
            "rps>20",
            "max<300ms",
            "p99[buy]<301ms",
        ],
        _result(),
    )
    assert [o.passed for o in outcomes] == [True, False, True, False, True, False, False, True]
    assert outcomes[2].actual == pytest.approx(50 / 200)  # 50 errors of 200 transactions
    assert "FAILED" in outcomes[1].describe() and "p50[browse]<49ms" in outcomes[1].describe()
    with pytest.raises(InvalidArgument, match="does not have"):
        check_thresholds(["p95[nope]<1s"], _result())
