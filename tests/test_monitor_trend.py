"""Trend prediction on synthetic series with a known slope: the crossing time within 10%."""

from __future__ import annotations

import random

import pytest
from aether_perf.monitor.alerts import AlertSystem, Rule
from aether_perf.monitor.metrics import Sample
from aether_perf.monitor.trend import describe_crossing, fit_trend, format_eta, time_to_cross


def series(slope: float, start: float, n: int, dt: float, noise: float = 0.0, seed: int = 1):
    rng = random.Random(seed)
    times = [1_000_000.0 + i * dt for i in range(n)]
    values = [start + slope * (t - times[0]) + rng.gauss(0, noise) for t in times]
    return times, values


@pytest.mark.parametrize("method", ["linear", "holt"])
def test_clean_ramp_crossing_time(method: str) -> None:
    # memory rising 0.05 %/s from 60 %: at the last point (t=59 s) it is 62.95 %; 90 % is
    # (90 - 62.95) / 0.05 = 541 s away.
    times, values = series(0.05, 60.0, 60, 1.0)
    trend = fit_trend(times, values, method)
    assert trend is not None
    eta = time_to_cross(trend, 90.0)
    truth = (90.0 - values[-1]) / 0.05
    assert eta == pytest.approx(truth, rel=0.10)
    assert trend.slope == pytest.approx(0.05, rel=0.10)


@pytest.mark.parametrize("method", ["linear", "holt"])
def test_noisy_ramp_crossing_time_within_ten_percent(method: str) -> None:
    times, values = series(0.1, 40.0, 60, 1.0, noise=0.3, seed=7)
    trend = fit_trend(times, values, method, alpha=0.2, beta=0.1)
    assert trend is not None
    truth = (90.0 - (40.0 + 0.1 * 59)) / 0.1  # from the true level at the last sample
    eta = time_to_cross(trend, 90.0)
    assert eta is not None and eta == pytest.approx(truth, rel=0.10)


def test_theil_sen_ignores_outliers() -> None:
    times, values = series(0.2, 10.0, 40, 0.5)
    for i in (5, 17, 30):  # GC pauses, bursts: wild points
        values[i] += 40.0
    trend = fit_trend(times, values, "linear")
    assert trend is not None
    assert trend.slope == pytest.approx(0.2, rel=0.02)
    truth = (50.0 - values[-1]) / 0.2
    assert time_to_cross(trend, 50.0) == pytest.approx(truth, rel=0.05)


def test_falling_series_and_direction() -> None:
    times, values = series(-2.0, 500.0, 30, 1.0)  # free space falling 2 units/s
    trend = fit_trend(times, values)
    assert trend is not None
    assert time_to_cross(trend, 1000.0) is None  # heading away from an upper threshold
    eta = time_to_cross(trend, 100.0, above=False)
    assert eta == pytest.approx((values[-1] - 100.0) / 2.0, rel=0.01)
    flat = fit_trend(times, [5.0] * 30)
    assert flat is not None and time_to_cross(flat, 10.0) is None


def test_too_few_points() -> None:
    assert fit_trend([1.0, 2.0], [1.0, 2.0]) is None
    assert fit_trend([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]) is None


def test_messages() -> None:
    assert format_eta(720) == "12 min"
    assert format_eta(30) == "30 s"
    assert describe_crossing("memory used", 90, "%", 720) == "memory used will cross 90% in about 12 min"


def test_predictive_alert_before_threshold() -> None:
    # 1 %/s rise from 50 %: the rule predicts the 90 % crossing within its 60 s horizon long
    # before the value gets there, and says when.
    rule = Rule("mem", "memory_percent", warning=80, critical=90, predict=60.0, cooldown=1000)
    system = AlertSystem([rule])
    events = []
    t0 = 1_700_000_000.0
    for i in range(20):
        value = 40.0 + 1.0 * i
        events += system.check(Sample(t0 + i, {"memory_percent": value}))
        if events:
            break
    assert len(events) == 1
    event = events[0]
    assert event.state == "predicted" and system.state("mem") == "ok"
    assert event.value < 90
    truth = 90.0 - event.value  # seconds at 1 %/s
    assert event.eta == pytest.approx(truth, rel=0.10)
    assert "will cross 90% in about" in event.message
    assert system.forecast("mem") is not None
    # Cool-down: the same prediction is not repeated every sample.
    more = system.check(Sample(t0 + 30, {"memory_percent": 71.0}))
    assert [e.state for e in more] == []
