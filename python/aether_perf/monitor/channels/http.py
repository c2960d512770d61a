"""HTTP channels: Slack incoming webhook, generic webhook, Prometheus Alertmanager."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aether_perf.monitor.channels.base import Channel, probe_url

if TYPE_CHECKING:
    from aether_perf.monitor.alerts import AlertEvent

__all__ = ["AlertmanagerChannel", "SlackChannel", "WebhookChannel", "post_json"]

_COLORS = {"warning": "#e0a800", "critical": "#d62728", "resolved": "#2ca02c", "predicted": "#1f77b4"}


def post_json(url: str, payload: Any, headers: dict[str, str] | None = None, timeout: float = 5.0) -> None:
    """POST ``payload`` as JSON; raise on a connection error or a non-2xx status."""
    data = json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("User-Agent", "aether-monitor")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        body = exc.read(200).decode("utf-8", "replace")
        raise OSError(f"HTTP {exc.code} from {url}: {body.strip()}") from None
    except (TimeoutError, urllib.error.URLError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OSError(f"{url}: {reason}") from None


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat().replace("+00:00", "Z")


def event_payload(event: AlertEvent) -> dict[str, Any]:
    """The generic webhook body: the event, with an ISO time."""
    body = event.to_dict()
    body["time_iso"] = _iso(event.time)
    return {"source": "aether", "version": 1, "alert": body}


class WebhookChannel(Channel):
    """POST each event as JSON (``event_payload``) to ``url``; an optional bearer token from the env."""

    name = "webhook"

    def __init__(self, url: str, token: str | None = None, timeout: float = 5.0) -> None:
        self.url = url
        self.token = token
        self.timeout = timeout

    def send(self, event: AlertEvent) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        post_json(self.url, event_payload(event), headers, self.timeout)

    def probe(self) -> str | None:
        return probe_url(self.url)


def slack_payload(event: AlertEvent) -> dict[str, Any]:
    """An incoming-webhook message: a text line plus one coloured attachment with the fields."""
    fields = [
        {"title": "Rule", "value": event.rule, "short": True},
        {"title": "State", "value": event.state, "short": True},
        {"title": "Metric", "value": event.metric, "short": True},
        {"title": "Value", "value": f"{event.value:g}", "short": True},
    ]
    if event.threshold is not None:
        fields.append({"title": "Threshold", "value": f"{event.threshold:g}", "short": True})
    for key, value in sorted(event.labels.items()):
        fields.append({"title": key, "value": value, "short": True})
    return {
        "text": f"[aether] {event.message}",
        "attachments": [
            {
                "color": _COLORS.get(event.state, "#888888"),
                "title": f"{event.state.upper()}: {event.rule}",
                "text": event.message,
                "fields": fields,
                "ts": int(event.time),
            }
        ],
    }


class SlackChannel(Channel):
    """A Slack incoming webhook (its URL is a secret: it comes from the environment)."""

    name = "slack"

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url
        self.timeout = timeout

    def send(self, event: AlertEvent) -> None:
        post_json(self.url, slack_payload(event), None, self.timeout)

    def probe(self) -> str | None:
        return probe_url(self.url)


def alertmanager_payload(event: AlertEvent, resolve_after: float) -> list[dict[str, Any]]:
    """Alertmanager v2 postable alerts. Firing alerts carry an ``endsAt`` ``resolve_after`` seconds
    ahead (re-sent while firing keeps them alive); a resolution sets ``endsAt`` to now; an escalation
    from warning to critical also ends the warning alert."""

    def alert(severity: str, ends: float | None) -> dict[str, Any]:
        labels = {
            "alertname": event.rule,
            "severity": severity,
            "metric": event.metric,
            "job": "aether",
            **event.labels,
        }
        body: dict[str, Any] = {
            "labels": labels,
            "annotations": {"summary": event.message, "value": f"{event.value:g}"},
            "startsAt": _iso(event.time),
        }
        if ends is not None:
            body["endsAt"] = _iso(ends)
        return body

    if event.state == "resolved":
        return [alert(event.previous, event.time)]
    if event.state == "predicted":
        return [alert("predicted", event.time + resolve_after)]
    alerts = [alert(event.state, event.time + resolve_after)]
    if event.previous in ("warning", "critical") and event.previous != event.state:
        alerts.append(alert(event.previous, event.time))
    return alerts


class AlertmanagerChannel(Channel):
    """Prometheus Alertmanager: ``POST {url}/api/v2/alerts``."""

    name = "alertmanager"

    def __init__(self, url: str, resolve_after: float = 3600.0, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.resolve_after = resolve_after
        self.timeout = timeout

    def send(self, event: AlertEvent) -> None:
        post_json(
            self.url + "/api/v2/alerts", alertmanager_payload(event, self.resolve_after), None, self.timeout
        )

    def probe(self) -> str | None:
        return probe_url(self.url)


def secret_from_env(variable: str) -> str | None:
    value = os.environ.get(variable)
    return value if value else None
