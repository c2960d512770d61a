"""Alert states (for, hysteresis, cool-down, resolved, escalation) and the TOML rules loader."""

from __future__ import annotations

from pathlib import Path

import pytest
from aether_perf.errors import InvalidArgument
from aether_perf.monitor.alerts import AlertSystem, Rule
from aether_perf.monitor.channels import (
    AlertmanagerChannel,
    LogChannel,
    SlackChannel,
    SmtpChannel,
    WebhookChannel,
)
from aether_perf.monitor.metrics import Sample
from aether_perf.monitor.rules import RulesError, load_rules, parse_rules

T0 = 1_700_000_000.0


class Collect:
    def __init__(self) -> None:
        self.events: list[object] = []

    def submit(self, event: object) -> None:
        self.events.append(event)


def feed(system: AlertSystem, values: list[float], metric: str = "cpu_percent", dt: float = 1.0):
    """Feed values one second apart; return the (time offset, state, notified) of each event."""
    out = []
    for i, value in enumerate(values):
        for event in system.check(Sample(T0 + i * dt, {metric: value})):
            out.append((i, event.state, event.notified))
    return out


def test_for_duration_filters_a_spike() -> None:
    rule = Rule("cpu", "cpu_percent", warning=80, critical=95, for_=3.0)
    system = AlertSystem([rule])
    # a 2 s spike to 99 % fires nothing; 4 s above 80 % fires a warning once it held 3 s.
    events = feed(system, [10, 99, 99, 10, 85, 85, 85, 85, 85])
    assert events == [(7, "warning", True)]
    assert system.state("cpu") == "warning"


def test_escalation_and_resolution_with_hysteresis() -> None:
    rule = Rule("cpu", "cpu_percent", warning=80, critical=90, hysteresis=5.0, cooldown=0)
    sink = Collect()
    system = AlertSystem([rule], sink)
    values = [50, 82, 91, 88, 86, 84, 79, 76, 74, 50]
    # 82 -> warning; 91 -> critical; 88, 86 stay critical (not below 85); 84 -> warning;
    # 79, 76 stay warning (not below 75); 74 -> resolved.
    assert feed(system, values) == [
        (1, "warning", True),
        (2, "critical", True),
        (5, "warning", True),
        (8, "resolved", True),
    ]
    assert [e.state for e in sink.events] == ["warning", "critical", "warning", "resolved"]  # type: ignore[attr-defined]
    assert system.state("cpu") == "resolved"
    assert [e.state for e in system.history] == ["warning", "critical", "warning", "resolved"]
    resolved = system.history[-1]
    assert resolved.previous == "warning" and resolved.value == 74


def test_cooldown_suppresses_repeats_but_keeps_history() -> None:
    rule = Rule("cpu", "cpu_percent", critical=90, cooldown=10.0)
    sink = Collect()
    system = AlertSystem([rule], sink)
    # flapping every second for 14 s: critical at 0, resolved at 1, critical at 2 (suppressed)...
    events = feed(system, [95, 50] * 7 + [95])
    notified = [(i, s) for i, s, n in events if n]
    assert notified == [(0, "critical"), (1, "resolved"), (10, "critical"), (11, "resolved")]
    assert len(system.history) == len(events) == 15
    assert len(sink.events) == 4


def test_below_direction() -> None:
    rule = Rule("threads low", "threads", warning=10, critical=5, above=False, hysteresis=1, cooldown=0)
    system = AlertSystem([rule])
    assert feed(system, [20, 9, 4, 5.5, 6.5, 12], metric="threads") == [
        (1, "warning", True),
        (2, "critical", True),
        (4, "warning", True),
        (5, "resolved", True),
    ]


def test_rule_validation() -> None:
    with pytest.raises(InvalidArgument, match="unknown metric"):
        Rule("x", "gpu_percent", warning=1)
    with pytest.raises(InvalidArgument, match="warning or a critical"):
        Rule("x", "cpu_percent")
    with pytest.raises(InvalidArgument, match="not past warning"):
        Rule("x", "cpu_percent", warning=90, critical=80)


GOOD = """\
# thresholds for the test
[[rule]]
name = "memory high"
metric = "memory"
warning = 80
critical = 90
for = "30s"
hysteresis = 5
cooldown = "5m"
predict = "15m"

[[rule]]
name = "cpu busy"
metric = "cpu_percent"
critical = 95

[channels.email]
host = "127.0.0.1"
port = 2525
from = "aether@example.test"
to = ["ops@example.test"]
username = "aether"
password_env = "T_SMTP_PASSWORD"

[channels.slack]
webhook_env = "T_SLACK_URL"

[channels.webhook]
url = "http://127.0.0.1:9/hook"

[channels.alertmanager]
url = "http://127.0.0.1:9093"

[channels.log]
"""

ENV = {"T_SMTP_PASSWORD": "s3cret", "T_SLACK_URL": "http://127.0.0.1:9/slack"}


def test_rules_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(GOOD)
    config = load_rules(path, environ=ENV)
    memory, cpu = config.rules
    assert (memory.metric, memory.warning, memory.critical) == ("memory_percent", 80, 90)
    assert (memory.for_, memory.hysteresis, memory.cooldown, memory.predict) == (30, 5, 300, 900)
    assert cpu.critical == 95 and cpu.warning is None and cpu.for_ == 0
    kinds = [type(c) for c in config.channels]
    assert kinds == [SmtpChannel, SlackChannel, WebhookChannel, AlertmanagerChannel, LogChannel]
    smtp = config.channels[0]
    assert isinstance(smtp, SmtpChannel) and smtp.password == "s3cret" and smtp.port == 2525
    slack = config.channels[1]
    assert isinstance(slack, SlackChannel) and slack.url == "http://127.0.0.1:9/slack"


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("old", "new", "key", "needle"),
    [
        ('metric = "cpu_percent"', 'metric = "gpu"', "key 'metric'", 'metric = "gpu"'),
        ("critical = 95", 'critical = "high"', "key 'critical'", 'critical = "high"'),
        ('for = "30s"', 'for = "30 parsecs"', "key 'for'", "parsecs"),
        ("hysteresis = 5", "hysteresis = 5\nthreshold = 3", "key 'threshold'", "threshold = 3"),
        ("port = 2525", "port = 99999", "key 'port'", "99999"),
        ('webhook_env = "T_SLACK_URL"', 'url = "https://hooks.slack.test/x"', "key 'url'", "hooks.slack"),
        ('password_env = "T_SMTP_PASSWORD"', 'password = "hunter2"', "key 'password'", "hunter2"),
        ('url = "http://127.0.0.1:9093"', 'url = "127.0.0.1:9093"', "key 'url'", 'url = "127.0.0.1:9093"'),
    ],
)
def test_rules_errors_name_line_and_key(tmp_path: Path, old: str, new: str, key: str, needle: str) -> None:
    text = GOOD.replace(old, new, 1)
    assert text != GOOD
    path = tmp_path / "rules.toml"
    path.write_text(text)
    with pytest.raises(RulesError) as info:
        load_rules(path, environ=ENV)
    message = str(info.value)
    assert message.startswith(f"{path}:{line_of(text, needle)}: ")
    assert key in message


def test_rules_errors_syntax_env_and_empty(tmp_path: Path) -> None:
    broken = GOOD.replace('name = "cpu busy"', 'name = "cpu busy', 1)
    with pytest.raises(RulesError, match=rf"^r.toml:{line_of(broken, 'cpu busy')}: TOML syntax error"):
        parse_rules(broken, "r.toml", ENV)
    with pytest.raises(
        RulesError, match=r"key 'password_env': environment variable T_SMTP_PASSWORD is not set"
    ):
        parse_rules(GOOD, "r.toml", {"T_SLACK_URL": "http://x"})
    with pytest.raises(RulesError, match="no \\[\\[rule\\]\\] table"):
        parse_rules("[channels.log]\n", "r.toml", ENV)
    with pytest.raises(RulesError, match="another rule is already named"):
        parse_rules(GOOD.replace("cpu busy", "memory high"), "r.toml", ENV)
    with pytest.raises(RulesError, match="no such rules file"):
        load_rules(tmp_path / "missing.toml")
