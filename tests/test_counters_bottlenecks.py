"""The chapter's bottleneck rules on hand-built CounterReadings: both sides of every rule, the
configurable thresholds, the unavailable case, Chinese suggestions, multiplexing, JSON round trip."""

from __future__ import annotations

import json

import pytest
from aether_perf.analysis import Thresholds, bottlenecks
from aether_perf.errors import InvalidArgument
from aether_perf.model.counters import CounterReading, EventCount

SECOND = 1_000_000_000


def reading(duration_ns: int = SECOND, **values: int | None) -> CounterReading:
    events = {}
    for key, value in values.items():
        name = key.replace("_", "-")
        if value is None:
            events[name] = EventCount(name, None, available=False, reason="ENOENT: no PMU", errno=2)
        else:
            events[name] = EventCount(name, value, enabled_ns=duration_ns, running_ns=duration_ns)
    return CounterReading(events=events, duration_ns=duration_ns)


def by_rule(findings: list) -> dict:
    return {finding.rule: finding for finding in findings}


def test_low_ipc_fires_below_one_and_not_above() -> None:
    low = by_rule(bottlenecks(reading(instructions=800, cycles=1000)))["cpu.low-ipc"]
    assert low.evaluated and low.severity == "warning"
    assert low.measured == pytest.approx(0.8) and low.threshold == 1.0
    assert "Consider loop unrolling to increase instruction-level parallelism" in low.suggestions
    assert low.evidence["cpi"] == pytest.approx(1.25)
    high = bottlenecks(reading(instructions=2500, cycles=1000))
    assert "cpu.low-ipc" not in by_rule(high)
    passed = by_rule(bottlenecks(reading(instructions=2500, cycles=1000), include_passed=True))["cpu.low-ipc"]
    assert passed.severity == "info" and passed.measured == pytest.approx(2.5) and not passed.suggestions


def test_cache_miss_rule_uses_misses_per_instruction() -> None:
    fired = by_rule(bottlenecks(reading(instructions=1000, cycles=500, cache_misses=60)))
    assert fired["cpu.cache-misses"].measured == pytest.approx(0.06)
    assert fired["cpu.cache-misses"].evidence["mpki"] == pytest.approx(60.0)
    assert len(fired["cpu.cache-misses"].suggestions) == 3
    quiet = by_rule(bottlenecks(reading(instructions=1000, cycles=500, cache_misses=40)))
    assert "cpu.cache-misses" not in quiet


def test_branch_rule_both_sides() -> None:
    fired = by_rule(bottlenecks(reading(instructions=1000, cycles=500, branch_misses=25, branches=200)))
    assert fired["cpu.branch-mispredicts"].measured == pytest.approx(0.025)
    assert fired["cpu.branch-mispredicts"].evidence["branch_miss_ratio"] == pytest.approx(0.125)
    quiet = by_rule(bottlenecks(reading(instructions=1000, cycles=500, branch_misses=15)))
    assert "cpu.branch-mispredicts" not in quiet


def test_thresholds_are_configurable() -> None:
    sample = reading(instructions=1500, cycles=1000, cache_misses=30, branch_misses=10)
    assert not [f for f in bottlenecks(sample) if f.evaluated and f.rule.startswith("cpu.")]
    strict = Thresholds(min_ipc=2.0, max_cache_miss_rate=0.01, max_branch_mispredict_rate=0.005)
    rules = by_rule(bottlenecks(sample, strict))
    assert {"cpu.low-ipc", "cpu.cache-misses", "cpu.branch-mispredicts"} <= set(rules)
    assert rules["cpu.cache-misses"].threshold == 0.01


def test_top_down_stalls_where_the_events_exist() -> None:
    sample = reading(instructions=2000, cycles=1000, stalled_cycles_frontend=400, stalled_cycles_backend=600)
    rules = by_rule(bottlenecks(sample))
    assert rules["cpu.frontend-bound"].measured == pytest.approx(0.4)
    assert rules["cpu.backend-bound"].measured == pytest.approx(0.6)
    calm = reading(instructions=2000, cycles=1000, stalled_cycles_frontend=100, stalled_cycles_backend=100)
    assert not {"cpu.frontend-bound", "cpu.backend-bound"} & set(by_rule(bottlenecks(calm)))


def test_context_switch_rate_rule() -> None:
    busy = by_rule(bottlenecks(reading(duration_ns=2 * SECOND, context_switches=3000)))
    assert busy["sched.context-switches"].measured == pytest.approx(1500.0)
    calm = by_rule(bottlenecks(reading(duration_ns=2 * SECOND, context_switches=1000)))
    assert "sched.context-switches" not in calm


def test_unavailable_counters_say_not_evaluated_with_the_reason() -> None:
    sample = reading(instructions=None, cycles=None, cache_misses=None, branch_misses=None, task_clock=10)
    rules = by_rule(bottlenecks(sample))
    for rule in ("cpu.low-ipc", "cpu.cache-misses", "cpu.branch-mispredicts"):
        assert rules[rule].evaluated is False
        assert rules[rule].severity == "info" and rules[rule].measured is None
        assert "not evaluated: missing counters" in rules[rule].message
        assert "ENOENT: no PMU" in rules[rule].message
    assert rules["cpu.low-ipc"].evidence["missing"] == ["instructions", "cycles"]
    # an event never measured at all is named as such
    assert "not measured" in rules["cpu.frontend-bound"].message
    assert sample.ipc is None and sample.mpki is None


def test_chinese_suggestions_are_the_chapters() -> None:
    rules = by_rule(bottlenecks(reading(instructions=800, cycles=1000, cache_misses=100), lang="zh"))
    assert "考虑循环展开以增加指令级并行性" in rules["cpu.low-ipc"].suggestions
    assert "考虑使用预取指令" in rules["cpu.cache-misses"].suggestions
    assert rules["cpu.low-ipc"].title == "指令级并行性低"
    with pytest.raises(InvalidArgument):
        bottlenecks(reading(), lang="fr")  # type: ignore[arg-type]


def test_multiplexed_counts_are_scaled_and_flagged() -> None:
    event = EventCount("instructions", 1000, enabled_ns=4000, running_ns=1000)
    assert event.scaled == 4000 and event.coverage == 0.25
    never = EventCount("cycles", 0, enabled_ns=4000, running_ns=0)
    assert never.scaled is None  # never fitted on the PMU: unknown, not zero
    sample = CounterReading({"instructions": event, "cycles": EventCount("cycles", 500, 4000, 1000)})
    assert sample.ipc == pytest.approx(2.0)
    rules = by_rule(bottlenecks(sample))
    assert rules["counters.multiplexed"].measured == pytest.approx(0.25)


def test_delta_and_json_round_trip() -> None:
    first = reading(instructions=1000, cycles=1000, cache_misses=None)
    second = reading(duration_ns=3 * SECOND, instructions=5000, cycles=3000, cache_misses=None)
    delta = second - first
    assert delta.value("instructions") == 4000 and delta.duration_ns == 2 * SECOND
    assert delta.ipc == pytest.approx(2.0)
    assert delta["cache-misses"].available is False
    again = CounterReading.from_dict(json.loads(json.dumps(delta.to_dict())))
    assert again == delta
