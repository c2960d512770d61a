"""Alert rules and channels from a TOML file, with errors that name the line and the key.

    [[rule]]
    name = "memory high"
    metric = "memory_percent"        # a series name (aether monitor --help lists them)
    warning = 80                     # thresholds in the series' unit
    critical = 90
    for = "30s"                      # how long the value must stay past a threshold
    hysteresis = 5                   # recover only below threshold - 5
    cooldown = "5m"                  # no repeat notification of the same state within this
    predict = "15m"                  # warn when the trend will cross critical within 15 min
    direction = "above"              # or "below" (free disk, say)

    [channels.email]                 # host, port, from, to, starttls, username, password_env
    [channels.slack]                 # webhook_env: the variable that holds the webhook URL
    [channels.webhook]               # url, token_env
    [channels.alertmanager]          # url
    [channels.log]                   # path (optional; default Python logging)

Secrets never live in the file: keys such as ``password`` or a Slack ``url`` are refused, and
``*_env`` keys name the environment variables that hold them. tomllib reports syntax errors with
a line; for the meaning of values we find the line of each key ourselves (:func:`key_lines`).
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aether_perf.errors import InvalidArgument
from aether_perf.monitor.alerts import Rule
from aether_perf.monitor.channels.base import Channel
from aether_perf.monitor.metrics import SERIES
from aether_perf.units import parse_duration

__all__ = ["AlertConfig", "RulesError", "key_lines", "load_rules", "parse_rules"]

#: Short names accepted for `metric`.
METRIC_ALIASES = {"cpu": "cpu_percent", "memory": "memory_percent", "threads": "threads"}

_RULE_KEYS = {
    "name",
    "metric",
    "warning",
    "critical",
    "for",
    "hysteresis",
    "cooldown",
    "predict",
    "trend",
    "direction",
}
_CHANNEL_KEYS: dict[str, set[str]] = {
    "email": {"host", "port", "from", "to", "starttls", "username", "password_env", "timeout"},
    "slack": {"webhook_env", "timeout"},
    "webhook": {"url", "token_env", "timeout"},
    "alertmanager": {"url", "resolve_after", "timeout"},
    "log": {"path"},
}
_SECRET_KEYS = {"password", "token", "webhook", "webhook_url", "secret", "api_key"}


class RulesError(InvalidArgument):
    """A rules file that cannot be used; the message names the file, the line and the key."""


@dataclass
class AlertConfig:
    rules: list[Rule]
    channels: list[Channel] = field(default_factory=list)


_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_\-]+)\s*=""")


def key_lines(text: str) -> dict[tuple[str, int, str], int]:
    """Map (table, index, key) -> 1-based line. ``table`` is the header ("rule", "channels.slack",
    "" for the top), ``index`` counts ``[[arrays]]`` of that name from 0 (0 for plain tables); the
    key "" maps to the header's own line."""
    lines: dict[tuple[str, int, str], int] = {}
    counts: dict[str, int] = {}
    table, index = "", 0
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header is not None:
            table = header.group(2).replace(" ", "")
            if header.group(1) == "[[":
                index = counts.get(table, -1) + 1
                counts[table] = index
            else:
                index = 0
            lines.setdefault((table, index, ""), number)
            continue
        key = _KEY.match(line)
        if key is not None:
            lines.setdefault((table, index, key.group(1).strip("\"'")), number)
    return lines


def load_rules(path: str | os.PathLike[str], environ: dict[str, str] | None = None) -> AlertConfig:
    """Read and check a rules file; raise RulesError ("rules.toml:12: rule 'x': key 'warning': ...")."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RulesError(f"no such rules file: '{path}'") from None
    except IsADirectoryError:
        raise RulesError(f"'{path}' is a directory, not a rules file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RulesError(f"cannot read rules file '{path}': {exc}") from None
    return parse_rules(text, str(path), environ)


def parse_rules(text: str, source: str = "<rules>", environ: dict[str, str] | None = None) -> AlertConfig:
    env = os.environ if environ is None else environ
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        where = re.search(r"\(at line (\d+), column (\d+)\)", message)
        if where:
            message = message[: where.start()].strip()
            raise RulesError(f"{source}:{where.group(1)}: TOML syntax error: {message}") from None
        raise RulesError(f"{source}: TOML syntax error: {message}") from None
    lines = key_lines(text)

    def fail(table: str, index: int, key: str, what: str, message: str) -> RulesError:
        line = lines.get((table, index, key)) or lines.get((table, index, "")) or 1
        where = f"key '{key}'" if key else f"[{table}]"
        return RulesError(f"{source}:{line}: {what}: {where}: {message}")

    for top in data:
        if top not in ("rule", "channels"):
            raise fail("", 0, top, "top level", "unknown section (expected [[rule]] and [channels.*])")
    raw_rules = data.get("rule", [])
    if not isinstance(raw_rules, list):
        raise fail("", 0, "rule", "top level", "write rules as [[rule]] tables")
    if not raw_rules:
        raise RulesError(f"{source}: no [[rule]] table: nothing to alert on")
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_rules):
        rule = _rule(raw, i, fail)
        if rule.name in seen:
            raise fail("rule", i, "name", f"rule {i + 1}", f"another rule is already named '{rule.name}'")
        seen.add(rule.name)
        rules.append(rule)
    channels_raw = data.get("channels", {})
    if not isinstance(channels_raw, dict):
        raise fail("", 0, "channels", "top level", "write channels as [channels.NAME] tables")
    channels = [
        _channel(kind, conf, env, lambda key, msg, k=kind: fail(f"channels.{k}", 0, key, "channel " + k, msg))
        for kind, conf in channels_raw.items()
    ]
    return AlertConfig(rules, channels)


def _rule(raw: Any, i: int, fail: Any) -> Rule:
    if not isinstance(raw, dict):
        raise fail("rule", i, "", f"rule {i + 1}", "not a table")
    what = f"rule '{raw['name']}'" if isinstance(raw.get("name"), str) else f"rule {i + 1}"

    def err(key: str, message: str) -> RulesError:
        return fail("rule", i, key, what, message)  # type: ignore[no-any-return]

    for key in raw:
        if key not in _RULE_KEYS:
            raise err(key, f"unknown key (expected one of {', '.join(sorted(_RULE_KEYS))})")
    name = raw.get("name", f"rule-{i + 1}")
    if not isinstance(name, str) or not name.strip():
        raise err("name", "must be a non-empty string")
    metric = raw.get("metric")
    if not isinstance(metric, str):
        raise err("metric", f"missing or not a string (one of {', '.join(SERIES)})")
    metric = METRIC_ALIASES.get(metric, metric)
    if metric not in SERIES:
        raise err("metric", f"unknown metric '{raw['metric']}' (one of {', '.join(SERIES)})")

    def number(key: str) -> float | None:
        value = raw.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise err(key, f"must be a number, got {value!r}")
        return float(value)

    def duration(key: str, default: float | None) -> float | None:
        value = raw.get(key)
        if value is None:
            return default
        if value == 0 or value == "0":
            return 0.0
        try:
            return parse_duration(value, name=key)
        except InvalidArgument as exc:
            raise err(key, str(exc).removeprefix(f"{key} ")) from None

    warning, critical = number("warning"), number("critical")
    if warning is None and critical is None:
        raise err("", "needs a 'warning' or a 'critical' threshold")
    direction = raw.get("direction", "above")
    if direction not in ("above", "below"):
        raise err("direction", f"must be 'above' or 'below', got {direction!r}")
    trend = raw.get("trend", "linear")
    if trend not in ("linear", "holt"):
        raise err("trend", f"must be 'linear' or 'holt', got {trend!r}")
    hysteresis = number("hysteresis") or 0.0
    if hysteresis < 0:
        raise err("hysteresis", "cannot be negative")
    for_ = duration("for", 0.0) or 0.0
    cooldown = duration("cooldown", 300.0) or 0.0
    predict = duration("predict", None)
    try:
        return Rule(
            name=name,
            metric=metric,
            warning=warning,
            critical=critical,
            for_=for_,
            hysteresis=hysteresis,
            cooldown=cooldown,
            above=direction == "above",
            predict=predict,
            trend=trend,
        )
    except InvalidArgument as exc:
        key = "critical" if "critical" in str(exc) else ""
        raise err(key, str(exc).removeprefix(f"rule '{name}': ")) from None


def _channel(kind: str, conf: Any, env: Any, err: Any) -> Channel:
    from aether_perf.monitor.channels import (
        AlertmanagerChannel,
        LogChannel,
        SlackChannel,
        SmtpChannel,
        WebhookChannel,
    )

    if kind not in _CHANNEL_KEYS:
        raise err("", f"unknown channel (one of {', '.join(_CHANNEL_KEYS)})")
    if not isinstance(conf, dict):
        raise err("", "must be a table")
    for key in conf:
        if key in _SECRET_KEYS or (kind == "slack" and key == "url"):
            raise err(
                key,
                f"secrets do not belong in the rules file: put it in an environment variable "
                f"and name it with '{key if key.endswith('_env') else _env_key(kind, key)}'",
            )
        if key not in _CHANNEL_KEYS[kind]:
            raise err(key, f"unknown key (expected one of {', '.join(sorted(_CHANNEL_KEYS[kind]))})")

    def string(key: str, required: bool = True) -> str | None:
        value = conf.get(key)
        if value is None and not required:
            return None
        if not isinstance(value, str) or not value:
            raise err(key, "missing or not a non-empty string")
        return value

    def secret(key: str, required: bool) -> str | None:
        variable = string(key, required)
        if variable is None:
            return None
        value = env.get(variable)
        if not value:
            raise err(key, f"environment variable {variable} is not set")
        return str(value)

    timeout = conf.get("timeout", 5.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise err("timeout", "must be a positive number of seconds")
    if kind == "email":
        port = conf.get("port", 25)
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise err("port", f"must be a port number, got {port!r}")
        to = conf.get("to")
        if isinstance(to, str):
            to = [to]
        if not isinstance(to, list) or not to or not all(isinstance(x, str) and "@" in x for x in to):
            raise err("to", "must be an address or a list of addresses")
        starttls = conf.get("starttls", False)
        if not isinstance(starttls, bool):
            raise err("starttls", "must be true or false")
        host = string("host")
        sender = string("from")
        assert host is not None and sender is not None
        return SmtpChannel(
            host,
            port,
            sender,
            to,
            starttls=starttls,
            username=string("username", required=False),
            password=secret("password_env", required=False),
            timeout=float(timeout),
        )
    if kind == "slack":
        url = secret("webhook_env", required=True)
        assert url is not None
        return SlackChannel(url, timeout=float(timeout))
    if kind == "webhook":
        url = _url(string("url"), err)
        return WebhookChannel(url, token=secret("token_env", required=False), timeout=float(timeout))
    if kind == "alertmanager":
        url = _url(string("url"), err)
        resolve_after = conf.get("resolve_after", "1h")
        try:
            resolve = parse_duration(resolve_after, name="resolve_after")
        except InvalidArgument as exc:
            raise err("resolve_after", str(exc).removeprefix("resolve_after ")) from None
        return AlertmanagerChannel(url, resolve_after=resolve, timeout=float(timeout))
    return LogChannel(string("path", required=False))


def _env_key(kind: str, key: str) -> str:
    return "webhook_env" if kind == "slack" else f"{key}_env"


def _url(value: str | None, err: Any) -> str:
    assert value is not None
    if not re.match(r"^https?://[^/\s]+", value):
        raise err("url", f"must be an http:// or https:// URL, got {value!r}")
    return value
