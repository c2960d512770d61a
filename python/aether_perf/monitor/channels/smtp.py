"""E-mail over SMTP, with optional STARTTLS and login (the password comes from the environment)."""

from __future__ import annotations

import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING

from aether_perf.monitor.channels.base import Channel, probe_tcp

if TYPE_CHECKING:
    from aether_perf.monitor.alerts import AlertEvent

__all__ = ["SmtpChannel", "build_message"]


def build_message(event: AlertEvent, sender: str, recipients: list[str]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = f"[aether] {event.state.upper()}: {event.rule}"
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(event.time, localtime=False)
    message["Message-ID"] = make_msgid(domain="aether.local")
    message["X-Aether-Rule"] = event.rule
    message["X-Aether-State"] = event.state
    when = datetime.fromtimestamp(event.time, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = [
        event.message,
        "",
        f"rule:      {event.rule}",
        f"state:     {event.state} (was {event.previous})",
        f"metric:    {event.metric}",
        f"value:     {event.value:g}",
    ]
    if event.threshold is not None:
        lines.append(f"threshold: {event.threshold:g}")
    lines.append(f"time:      {when}")
    for key, value in sorted(event.labels.items()):
        lines.append(f"{key + ':':<10} {value}")
    message.set_content("\n".join(lines) + "\n")
    return message


class SmtpChannel(Channel):
    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        recipients: list[str],
        *,
        starttls: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.recipients = recipients
        self.starttls = starttls
        self.ssl_context = ssl_context
        self.username = username
        self.password = password
        self.timeout = timeout

    def send(self, event: AlertEvent) -> None:
        message = build_message(event, self.sender, self.recipients)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as client:
            if self.starttls:
                client.starttls(context=self.ssl_context or ssl.create_default_context())
            if self.username:
                client.login(self.username, self.password or "")
            client.send_message(message)

    def probe(self) -> str | None:
        return probe_tcp(self.host, self.port)
