"""Load-test histograms and results: exact merges, JSON round trips (no server needed)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from aether_perf.errors import InvalidArgument
from aether_perf.load import LoadTestResult, Scenario, Stage, StageResult, TransactionStats, Window
from aether_perf.load.histogram import Histogram, decode, encode, merged


def _values(n: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [int(rng.lognormvariate(17, 0.8)) for _ in range(n)]  # ~24 ms median, long tail, in ns


def test_merge_is_exactly_the_histogram_of_the_union() -> None:
    a, b, c = _values(5000, 1), _values(3000, 2), _values(700, 3)
    union = Histogram.from_values(a + b + c)
    merge = merged([Histogram.from_values(a), Histogram.from_values(b), Histogram.from_values(c)])
    assert merge.counts == union.counts
    assert (merge.count, merge.total, merge.min, merge.max) == (
        union.count,
        union.total,
        union.min,
        union.max,
    )
    qs = [50, 90, 95, 99, 99.9, 100]
    assert merge.percentiles(qs) == union.percentiles(qs)
    exact = np.percentile(np.array(a + b + c, dtype=float), qs)
    for got, want in zip(merge.percentiles(qs), exact, strict=True):
        assert abs(got - want) <= 0.008 * want  # log-linear buckets: within 0.8 %


def test_encode_decode_round_trip_and_refuses_bad_data() -> None:
    h = Histogram.from_values(_values(1000, 4))
    back = decode(encode(h))
    assert back.counts == h.counts and back.count == h.count and back.max == h.max
    bad = encode(h)
    bad["count"] += 1
    with pytest.raises(InvalidArgument, match="do not add up"):
        decode(bad)
    with pytest.raises(InvalidArgument):
        decode({"unit": "ms"})


def _result(values: list[int], errors: int, users: int) -> LoadTestResult:
    stats = TransactionStats(
        Histogram.from_values(values), Histogram.from_values(values), {"timeout": errors}
    )
    stage = StageResult(Stage("sustained", "sustained", 0.0, 10.0, users), {"buy": stats}, peak_users=users)
    window = Window(0, Histogram.from_values(values), Histogram.from_values(values), errors, users)
    return LoadTestResult("shop", "closed", "http://127.0.0.1:1", stages=[stage], timeline=[window])


def test_results_merge_exactly_and_survive_json() -> None:
    a, b = _values(2000, 5), _values(1000, 6)
    one, two = _result(a, 3, 4), _result(b, 2, 6)
    merge = LoadTestResult.merge([one, two])
    whole = _result(a + b, 5, 10)
    assert merge.total.count == whole.total.count == 3005
    assert merge.total.errors == {"timeout": 5}
    assert merge.sustained.peak_users == 10
    assert merge.total.corrected.counts == whole.total.corrected.counts
    assert merge.timeline[0].corrected.counts == whole.timeline[0].corrected.counts
    back = LoadTestResult.from_json(merge.to_json())
    assert back.total.corrected.counts == merge.total.corrected.counts
    assert back.sustained.stage == merge.sustained.stage
    assert back.to_dict()["total"]["latency"]["p99"] == pytest.approx(
        merge.total.corrected.percentile(99) / 1e9
    )
    with pytest.raises(InvalidArgument, match="not an aether load-test result"):
        LoadTestResult.from_json('{"format": "something else"}')


def test_scenario_stages_and_bad_input() -> None:
    async def hit(client: object) -> None: ...

    s = Scenario("t", users=9, ramp_up="3s", duration="10s", transactions=[hit])
    assert [(st.name, st.users, st.start, st.duration) for st in s.stages()] == [
        ("ramp 1/3", 3, 0.0, 1.0),
        ("ramp 2/3", 6, 1.0, 1.0),
        ("ramp 3/3", 9, 2.0, 1.0),
        ("sustained", 9, 3.0, 10.0),
    ]
    o = Scenario("o", arrival_rate="120/m", duration="1s", transactions=[hit])
    assert o.model == "open" and o.rate == 2.0 and o.stages()[0].rate == 2.0
    for bad, message in [
        ({"users": 5, "arrival_rate": "5/s"}, "not both"),
        ({"arrival_rate": "0/s"}, "greater than zero"),
        ({"arrival_rate": "5000000/s"}, "impossible"),
        ({"arrival_rate": "fast"}, "rate such as"),
        ({"users": 0}, ">= 1"),
        ({"users": 3, "transactions": []}, "non-empty"),
    ]:
        kwargs = {"duration": "1s", "transactions": [hit], **bad}
        with pytest.raises(InvalidArgument, match=message):
            Scenario("x", **kwargs)  # type: ignore[arg-type]
