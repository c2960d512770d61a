"""The native load engine against a real loopback server with known, injected latency."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from aether_perf.load import Scenario, transaction
from aether_perf.load.runner import Progress
from load_server import Server, injected


@transaction(weight=3)
async def browse(client):  # type: ignore[no-untyped-def]
    await client.get("/items")


@transaction(weight=1)
async def buy(client):  # type: ignore[no-untyped-def]
    await client.post("/buy", json={"item": 1})


@transaction
async def hit(client):  # type: ignore[no-untyped-def]
    await client.get("/x")


def _assert_matches_server(hist_ns: object, service: list[float]) -> None:
    """Percentiles measured by the load tester match those of the latency the server delivered.

    The server injects a known grid of delays (asyncio.sleep) and also times each request itself,
    arrival to reply: on a busy shared machine its sleeps overshoot by a few ms, and that is
    latency it really delivered. The load tester, timing from the other side of the socket, must
    find the same distribution within 10 %.
    """
    truth = np.array(service)
    for q in (50, 90, 95, 99):
        got = hist_ns.percentile(q) / 1e9  # type: ignore[attr-defined]
        want = float(np.percentile(truth, q))
        assert abs(got - want) <= 0.10 * want, (q, got, want)


def test_closed_model_percentiles_match_the_injected_latency() -> None:
    # long enough that loopback and scheduling overhead (tens of ms in the tail on a busy shared
    # machine) stay well inside 10 %
    server = Server("--latency", "200", "600")
    with server as url:
        result = Scenario("shop", users=60, duration="3s", transactions=[browse, buy]).run(host=url)
        served = server.served()
        service = server.service_times()
    total = result.total
    assert total.errors == {} and total.count >= 350
    assert served - 60 <= total.count <= served  # only what was in flight at the end is unrecorded
    _assert_matches_server(total.corrected, service)
    # ... and what the server delivered is the injected grid, give or take its sleeps' overshoot
    planned = float(np.median(injected(served, 200, 600)))
    assert 0.99 * planned <= float(np.median(service)) < 1.2 * planned
    assert total.raw.counts == total.corrected.counts  # closed model: intended start == actual start
    # weights 3:1 -> browse about 75 % of transactions
    share = result.transactions["browse"].count / total.count
    assert 0.65 < share < 0.85  # over 4 standard deviations of a binomial share of ~400 draws


def test_open_model_shows_a_stall_that_raw_latency_hides() -> None:
    # 100/s on 2 connections; at t=1 s the server stops the world for 1 s. Raw latency sees only the
    # 2 requests in flight during the stall; corrected latency charges the waiting to the ~100
    # transactions that were due then.
    with Server("--latency", "1", "3", "--stall-after", "1", "--stall-for", "1") as url:
        scenario = Scenario("stall", arrival_rate="100/s", duration="3s", max_users=2, transactions=[hit])
        result = scenario.run(host=url)
    total = result.total
    assert 280 <= total.count <= 300 and not total.errors
    corrected = total.corrected.percentiles([50, 90, 99])
    raw = total.raw.percentiles([50, 90, 99])
    assert corrected[1] > 0.5e9 and corrected[2] > 0.85e9  # the stall, as the schedule saw it
    assert raw[1] < 0.1e9 and raw[2] < 0.2e9  # hidden: only 2 of ~300 requests waited
    assert total.raw.max > 0.9e9  # ... except in the maximum
    assert result.late >= 80  # the starts that waited for a free connection


def test_ramp_up_stages_reach_their_user_counts() -> None:
    with Server("--latency", "20", "40") as url:  # latency-bound: throughput follows the users
        scenario = Scenario("ramp", users=6, ramp_up="1.5s", ramp_stages=3, duration="1s", transactions=[hit])
        result = scenario.run(host=url)
    assert [(s.name, s.stage.users, s.peak_users) for s in result.stages] == [
        ("ramp 1/3", 2, 2),
        ("ramp 2/3", 4, 4),
        ("ramp 3/3", 6, 6),
        ("sustained", 6, 6),
    ]
    rates = [s.throughput for s in result.stages]
    assert rates[0] < rates[1] < rates[2]  # more users, more load on a server that is not saturated
    assert rates[2] == pytest.approx(rates[3], rel=0.3)


def test_open_model_ramps_its_rate() -> None:
    with Server() as url:
        scenario = Scenario(
            "rate", arrival_rate="120/s", ramp_up="1s", ramp_stages=2, duration="1s", transactions=[hit]
        )
        seen: list[Progress] = []
        result = scenario.run(host=url, progress=seen.append)
    assert [s.total.count for s in result.stages] == [30, 60, 120]  # 60/s for 0.5 s, 120/s for 0.5 s and 1 s
    assert result.dropped == 0
    # live progress: once a second, cumulative, naming the stage running then
    assert len(seen) in (1, 2) and seen[0].stage == "sustained" and 0 < seen[0].completed <= 90
    assert seen[0].recent_rps > 0 and seen[0].total == 2.0


def test_workers_merge_exactly() -> None:
    server = Server("--latency", "200", "600")
    with server as url:
        result = Scenario("two", users=40, duration="3s", transactions=[hit]).run(host=url, workers=2)
        served = server.served()
        service = server.service_times()
    parts = result.worker_results
    assert len(parts) == 2 and result.workers == 2
    assert result.total.count == sum(p.total.count for p in parts)
    union = parts[0].total.corrected
    union.merge(parts[1].total.corrected)
    assert result.total.corrected.counts == union.counts
    assert result.total.corrected.percentiles([50, 99]) == union.percentiles([50, 99])
    assert [s.peak_users for s in result.stages] == [40]
    assert served - 40 <= result.total.count <= served
    _assert_matches_server(result.total.corrected, service)


def test_unreachable_target_and_http_errors_are_counted_by_kind() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        result = Scenario("down", users=2, duration="0.5s", transactions=[hit]).run(
            host=f"http://127.0.0.1:{port}"
        )
    total = result.total
    assert total.ok == 0 and set(total.errors) == {"connection refused"} and total.count > 10

    with Server("--status", "503") as url:
        result = Scenario("503", users=2, duration="0.5s", transactions=[hit]).run(host=url)
    assert set(result.total.errors) == {"HTTP 503"} and result.total.ok == 0


def test_plain_callables_and_exceptions_become_error_kinds() -> None:
    def compute(client: object) -> None:
        sum(range(1000))

    async def broken(client: object) -> None:
        raise ValueError("no such item")

    with Server() as url:
        result = Scenario("mixed", users=2, duration="0.5s", transactions=[compute, broken]).run(host=url)
    assert result.transactions["compute"].ok > 0 and not result.transactions["compute"].errors
    assert set(result.transactions["broken"].errors) == {"ValueError: no such item"}


def test_think_time_paces_closed_model_users() -> None:
    # 4 users, ~0 ms server, 200 ms think: each user runs about 1 / 0.2 s = 5 transactions a second.
    with Server() as url:
        result = Scenario("think", users=4, duration="1.5s", think_time="200ms", transactions=[hit]).run(
            host=url
        )
    assert 20 <= result.total.count <= 32  # 4 users x 8 starts (t = 0, 0.2, ... 1.4 s), fewer when late
    with Server() as url:
        paced = Scenario("range", users=4, duration="1.5s", think_time=("100ms", "300ms"), transactions=[hit])
        assert 20 <= paced.run(host=url).total.count <= 40


def test_workers_share_an_open_model_rate() -> None:
    with Server() as url:
        scenario = Scenario("rate2", arrival_rate="100/s", duration="1s", transactions=[hit])
        result = scenario.run(host=url, workers=2)
    assert [p.total.count for p in result.worker_results] == [50, 50]  # 50/s each for 1 s
    assert result.total.count == 100 and result.dropped == 0
    assert result.sustained.stage.rate == 100.0  # the whole test's plan, not one worker's share
