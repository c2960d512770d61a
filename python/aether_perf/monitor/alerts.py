"""Threshold alerts: ``AlertSystem(rules, channels).check(sample)``.

Each rule watches one series against a warning and/or a critical threshold. Its state is ``ok``
(never fired), ``warning``, ``critical`` or ``resolved`` (back to normal after firing). The rules
of the game, as Prometheus and Alertmanager play it:

- **for**: a level is entered only once the value has been past its threshold for that long
  (one sample past it with ``for = 0``), so a single spike does not page anyone.
- **hysteresis**: a level is left only once the value is back past the threshold by that margin
  (90% critical with hysteresis 5 stays critical until below 85%), so a value hovering at the
  threshold does not flap. Leaving is immediate: recovery needs no ``for``.
- **cool-down**: a notification of the same rule and state is not sent again within it; the
  transition still goes to the history (with ``notified=False``).
- **predict**: with a horizon, a rule also fits the trend of its recent history (see trend.py)
  and raises a ``predicted`` event ("memory will cross 90% in about 12 min") before the threshold
  is crossed.

``check`` never blocks on delivery: events go to the channels' background workers (channels/).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field

from aether_perf.monitor.metrics import SERIES, Sample
from aether_perf.monitor.trend import METHODS, describe_crossing, fit_trend, time_to_cross

__all__ = ["STATES", "AlertEvent", "AlertSystem", "Rule"]

#: Rule states, and the event kind of a trend prediction.
STATES = ("ok", "warning", "critical", "resolved")
PREDICTED = "predicted"
_LEVEL_NAMES = ("ok", "warning", "critical")
#: Points a trend fit needs before it may predict anything.
MIN_TREND_POINTS = 5


@dataclass(frozen=True)
class Rule:
    """One alert rule. Thresholds are in the series' unit; durations in seconds."""

    name: str
    metric: str
    warning: float | None = None
    critical: float | None = None
    for_: float = 0.0
    hysteresis: float = 0.0
    cooldown: float = 300.0
    above: bool = True
    predict: float | None = None
    trend: str = "linear"
    trend_points: int = 30

    def __post_init__(self) -> None:
        from aether_perf.errors import InvalidArgument

        if self.metric not in SERIES:
            raise InvalidArgument(f"rule '{self.name}': unknown metric '{self.metric}'")
        if self.warning is None and self.critical is None:
            raise InvalidArgument(f"rule '{self.name}': needs a warning or a critical threshold")
        if self.warning is not None and self.critical is not None:
            if (self.above and self.critical < self.warning) or (
                not self.above and self.critical > self.warning
            ):
                raise InvalidArgument(
                    f"rule '{self.name}': critical ({self.critical:g}) is not past warning ({self.warning:g})"
                )
        if self.for_ < 0 or self.hysteresis < 0 or self.cooldown < 0:
            raise InvalidArgument(f"rule '{self.name}': for, hysteresis and cooldown cannot be negative")
        if self.trend not in METHODS:
            raise InvalidArgument(f"rule '{self.name}': unknown trend method '{self.trend}'")

    def threshold(self, level: int) -> float | None:
        return self.warning if level == 1 else self.critical if level == 2 else None

    def _past(self, value: float, threshold: float) -> bool:
        return value >= threshold if self.above else value <= threshold

    def _recovered(self, value: float, threshold: float) -> bool:
        return value < threshold - self.hysteresis if self.above else value > threshold + self.hysteresis


@dataclass
class AlertEvent:
    """A state change of a rule (or a prediction), as it goes to the history and the channels."""

    rule: str
    metric: str
    state: str
    previous: str
    value: float
    threshold: float | None
    time: float
    message: str
    notified: bool = True
    eta: float | None = None
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def firing(self) -> bool:
        return self.state in ("warning", "critical")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class _RuleState:
    def __init__(self, points: int) -> None:
        self.level = 0
        self.fired = False
        self.since: dict[int, float | None] = {1: None, 2: None}
        self.points: deque[tuple[float, float]] = deque(maxlen=max(points, MIN_TREND_POINTS))
        self.forecast: str | None = None

    @property
    def state(self) -> str:
        if self.level == 0:
            return "resolved" if self.fired else "ok"
        return _LEVEL_NAMES[self.level]


class AlertSystem:
    """Evaluate ``rules`` on each sample; hand notified events to ``channels`` (a Dispatcher or any
    object with ``submit(event)``); keep the last ``history`` events."""

    def __init__(
        self,
        rules: Sequence[Rule],
        channels: object | None = None,
        *,
        history: int = 500,
        labels: dict[str, str] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.rules = list(rules)
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            from aether_perf.errors import InvalidArgument

            raise InvalidArgument("alert rules: two rules share a name")
        self.channels = channels
        self.history: deque[AlertEvent] = deque(maxlen=history)
        self.labels = dict(labels or {})
        self._clock = clock
        self._state = {r.name: _RuleState(r.trend_points) for r in self.rules}
        self._last_sent: dict[tuple[str, str], float] = {}

    def state(self, rule: str) -> str:
        """The rule's current state: ok, warning, critical or resolved."""
        return self._state[rule].state

    def states(self) -> dict[str, str]:
        return {name: s.state for name, s in self._state.items()}

    def level(self, rule: str) -> int:
        """0 ok/resolved, 1 warning, 2 critical."""
        return self._state[rule].level

    def forecast(self, rule: str) -> str | None:
        """The rule's current prediction text, if its trend heads for a threshold within the horizon."""
        return self._state[rule].forecast

    def check(self, sample: Sample) -> list[AlertEvent]:
        """Evaluate every rule on ``sample``; return the events it caused (notified or not)."""
        now = sample.time if self._clock is None else self._clock()
        events: list[AlertEvent] = []
        for rule in self.rules:
            value = sample.values.get(rule.metric)
            if value is None:
                continue
            st = self._state[rule.name]
            st.points.append((sample.time, value))
            event = self._evaluate(rule, st, value, now)
            if event is not None:
                events.append(event)
            prediction = self._predict(rule, st, now)
            if prediction is not None:
                events.append(prediction)
        for event in events:
            self.history.append(event)
            if event.notified and self.channels is not None:
                self.channels.submit(event)  # type: ignore[attr-defined]
        return events

    def _evaluate(self, rule: Rule, st: _RuleState, value: float, now: float) -> AlertEvent | None:
        for level in (1, 2):
            threshold = rule.threshold(level)
            if threshold is not None and rule._past(value, threshold):
                if st.since[level] is None:
                    st.since[level] = now
            else:
                st.since[level] = None
        new = 0
        for level in (1, 2):
            threshold = rule.threshold(level)
            if threshold is None:
                continue
            since = st.since[level]
            if level > st.level:
                if since is not None and now - since >= rule.for_:
                    new = level
            elif not rule._recovered(value, threshold):
                new = max(new, level)
        if new == st.level:
            return None
        previous = st.state
        st.level = new
        if new > 0:
            st.fired = True
        state = st.state
        shown = _value_text(rule.metric, value)
        if new > 0:
            threshold = rule.threshold(new)
            assert threshold is not None
            sign = ">=" if rule.above else "<="
            message = (
                f"{state.upper()} {rule.name}: {rule.metric} = {shown} "
                f"{sign} {_value_text(rule.metric, threshold)}"
            )
        else:
            threshold = rule.threshold(1 if previous == "warning" else 2)
            message = f"RESOLVED {rule.name}: {rule.metric} = {shown} (was {previous})"
        return AlertEvent(
            rule=rule.name,
            metric=rule.metric,
            state=state,
            previous=previous,
            value=value,
            threshold=threshold,
            time=now,
            message=message,
            notified=self._may_send(rule, state, now),
            labels=dict(self.labels),
        )

    def _predict(self, rule: Rule, st: _RuleState, now: float) -> AlertEvent | None:
        st.forecast = None
        if rule.predict is None or st.level >= 2 or len(st.points) < MIN_TREND_POINTS:
            return None
        target = rule.critical if rule.critical is not None else rule.warning
        if target is None or (st.level == 1 and rule.critical is None):
            return None
        times = [t for t, _ in st.points]
        values = [v for _, v in st.points]
        trend = fit_trend(times, values, rule.trend)
        if trend is None:
            return None
        eta = time_to_cross(trend, target, above=rule.above)
        if eta is None or eta <= 0 or eta > rule.predict:
            return None
        info = SERIES[rule.metric]
        label = info.label.split(",")[0].split(" (")[0]
        st.forecast = describe_crossing(label, target, info.unit, eta)
        if not self._may_send(rule, PREDICTED, now):
            return None
        return AlertEvent(
            rule=rule.name,
            metric=rule.metric,
            state=PREDICTED,
            previous=st.state,
            value=values[-1],
            threshold=target,
            time=now,
            message=f"PREDICTED {rule.name}: {st.forecast}",
            eta=eta,
            labels=dict(self.labels),
        )

    def _may_send(self, rule: Rule, state: str, now: float) -> bool:
        key = (rule.name, state)
        last = self._last_sent.get(key)
        if last is not None and now - last < rule.cooldown:
            return False
        self._last_sent[key] = now
        return True


def _value_text(metric: str, value: float) -> str:
    unit = SERIES[metric].unit
    if unit == "%":
        return f"{value:.1f}%"
    if unit in ("B", "B/s"):
        from aether_perf.units import format_size

        return format_size(int(value)) + ("/s" if unit == "B/s" else "")
    return f"{value:g}"


def rules_for(names: Iterable[str], rules: Sequence[Rule]) -> list[Rule]:
    """The rules whose metric is among ``names`` (the series being collected)."""
    wanted = set(names)
    return [r for r in rules if r.metric in wanted]
