"""Notification channels against real servers on 127.0.0.1: aiosmtpd for e-mail (plain, login,
STARTTLS), an http.server for Slack / webhook payloads; retries with backoff, a failing or hung
channel never holding up the others, unreachable channels reported at start-up."""

from __future__ import annotations

import itertools
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aether_perf.monitor.alerts import AlertEvent, AlertSystem, Rule
from aether_perf.monitor.channels import Dispatcher, LogChannel, SlackChannel, SmtpChannel, WebhookChannel
from aether_perf.monitor.metrics import Sample
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

T0 = 1_700_000_000.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def critical_event() -> AlertEvent:
    rule = Rule("memory high", "memory_percent", warning=80, critical=90)
    system = AlertSystem([rule], labels={"scope": "machine", "host": "testhost"})
    (event,) = system.check(Sample(T0, {"memory_percent": 93.5}))
    return event


# ---------------------------------------------------------------- SMTP


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Message]] = []
        self.received = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content))
        )
        self.received.set()
        return "250 OK"


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.login == b"aether" and data.password == b"s3cret"
    return AuthResult(success=ok)


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, authenticator=authenticator, auth_require_tls=False
    )
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def check_mail(inbox: Inbox) -> None:
    assert inbox.received.wait(10)
    sender, recipients, message = inbox.messages[0]
    assert sender == "aether@example.test"
    assert recipients == ["ops@example.test", "dev@example.test"]
    assert message["Subject"] == "[aether] CRITICAL: memory high"
    assert message["From"] == "aether@example.test"
    assert message["To"] == "ops@example.test, dev@example.test"
    assert message["X-Aether-State"] == "critical"
    body = message.get_payload(decode=True).decode().replace("\r\n", "\n")
    assert body.startswith("CRITICAL memory high: memory_percent = 93.5% >= 90.0%\n")
    assert "state:     critical (was ok)" in body
    assert "threshold: 90" in body
    assert "host:      testhost" in body


def test_email_with_login(smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    channel = SmtpChannel(
        "127.0.0.1",
        port,
        "aether@example.test",
        ["ops@example.test", "dev@example.test"],
        username="aether",
        password="s3cret",
    )
    assert channel.probe() is None
    channel.send(critical_event())
    check_mail(inbox)


def test_email_starttls(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_context,
        require_starttls=True,
        authenticator=authenticator,
    )
    controller.start()
    try:
        client_context = ssl.create_default_context(cafile=str(cert))
        plain = SmtpChannel("127.0.0.1", port, "aether@example.test", ["ops@example.test"])
        with pytest.raises(Exception, match="STARTTLS"):  # the server insists on TLS
            plain.send(critical_event())
        channel = SmtpChannel(
            "127.0.0.1",
            port,
            "aether@example.test",
            ["ops@example.test", "dev@example.test"],
            starttls=True,
            ssl_context=client_context,
            username="aether",
            password="s3cret",
        )
        channel.send(critical_event())
        check_mail(inbox)
    finally:
        controller.stop()


# ---------------------------------------------------------------- HTTP


class Hooks:
    """A local HTTP server recording JSON POSTs by path; /fail-N fails the first N requests; /hang
    blocks until released."""

    def __init__(self) -> None:
        self.posts: dict[str, list[tuple[float, Any, dict[str, str]]]] = {}
        self.arrived = threading.Condition()
        self.release = threading.Event()
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                path = self.path
                with hooks.arrived:
                    calls = hooks.posts.setdefault(path, [])
                    calls.append((time.monotonic(), json.loads(body), dict(self.headers)))
                    hooks.arrived.notify_all()
                if path == "/hang":
                    hooks.release.wait(20)
                if path.startswith("/fail-") and len(calls) <= int(path.split("-")[1]):
                    self.send_response(503)
                    self.end_headers()
                    self.wfile.write(b"busy")
                    return
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(
        self, path: str, count: int, timeout: float = 10.0
    ) -> list[tuple[float, Any, dict[str, str]]]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.posts.get(path, [])) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{path}: {len(self.posts.get(path, []))} of {count} requests arrived"
                self.arrived.wait(left)
            return list(self.posts[path])

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    server = Hooks()
    try:
        yield server
    finally:
        server.close()


def test_slack_payload_field_by_field(hooks: Hooks) -> None:
    SlackChannel(hooks.url + "/slack").send(critical_event())
    ((_, body, headers),) = hooks.wait_for("/slack", 1)
    assert headers["Content-Type"] == "application/json"
    assert body["text"] == "[aether] CRITICAL memory high: memory_percent = 93.5% >= 90.0%"
    (attachment,) = body["attachments"]
    assert attachment["color"] == "#d62728"
    assert attachment["title"] == "CRITICAL: memory high"
    assert attachment["ts"] == int(T0)
    fields = {f["title"]: f["value"] for f in attachment["fields"]}
    assert fields == {
        "Rule": "memory high",
        "State": "critical",
        "Metric": "memory_percent",
        "Value": "93.5",
        "Threshold": "90",
        "host": "testhost",
        "scope": "machine",
    }


def test_webhook_payload_and_token(hooks: Hooks) -> None:
    WebhookChannel(hooks.url + "/hook", token="tok-123").send(critical_event())
    ((_, body, headers),) = hooks.wait_for("/hook", 1)
    assert headers["Authorization"] == "Bearer tok-123"
    assert body["source"] == "aether" and body["version"] == 1
    alert = body["alert"]
    assert alert["rule"] == "memory high"
    assert alert["metric"] == "memory_percent"
    assert alert["state"] == "critical" and alert["previous"] == "ok"
    assert alert["value"] == 93.5 and alert["threshold"] == 90.0
    assert alert["time"] == T0 and alert["time_iso"] == "2023-11-14T22:13:20Z"
    assert alert["labels"] == {"scope": "machine", "host": "testhost"}


def test_failing_channel_retried_with_backoff_others_deliver(hooks: Hooks, tmp_path: Path) -> None:
    dead_port = free_port()  # nothing listens there
    errors: list[str] = []
    log_path = tmp_path / "alerts.log"
    dispatcher = Dispatcher(
        [
            WebhookChannel(hooks.url + "/fail-2"),  # 503, 503, then 200
            WebhookChannel(f"http://127.0.0.1:{dead_port}/x"),  # refused every time
            SlackChannel(hooks.url + "/slack"),
            LogChannel(log_path),
        ],
        attempts=4,
        backoff=0.2,
        on_error=errors.append,
    )
    try:
        warnings = dispatcher.probe()
        assert len(warnings) == 1 and f"127.0.0.1:{dead_port}" in warnings[0]
        start = time.monotonic()
        dispatcher.submit(critical_event())
        assert time.monotonic() - start < 0.5  # queued, not delivered, by submit
        ((first_slack, _, _),) = hooks.wait_for("/slack", 1)
        attempts = hooks.wait_for("/fail-2", 3)
        times = [t for t, _, _ in attempts]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        # backoff 0.2 s then doubled: the waits are at least that long, and grow
        assert gaps[0] >= 0.2 and gaps[1] >= 0.4 and gaps[1] > gaps[0]
        assert first_slack < times[-1]  # Slack did not wait for the failing channel's retries
        dead = dispatcher.channels[1]
        deadline = time.monotonic() + 10
        while dispatcher.stats_for(dead).given_up == 0:  # 4 attempts: 0.2 + 0.4 + 0.8 s of backoff
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        dispatcher.close(timeout=5)
    flaky, dead, slack, log = dispatcher.channels
    assert dispatcher.stats_for(flaky).delivered == 1 and dispatcher.stats_for(flaky).failures == 2
    assert dispatcher.stats_for(slack).delivered == 1
    assert dispatcher.stats_for(dead).delivered == 0 and dispatcher.stats_for(dead).given_up == 1
    assert dispatcher.stats_for(dead).attempts == 4
    assert len(errors) == 1 and "gave up on 'memory high' after 4 attempts" in errors[0]
    assert (
        log_path.read_text()
        .strip()
        .endswith("critical CRITICAL memory high: memory_percent = 93.5% >= 90.0%")
    )
    assert dispatcher.stats_for(log).delivered == 1


def test_hung_channel_does_not_block_others(hooks: Hooks) -> None:
    dispatcher = Dispatcher(
        [WebhookChannel(hooks.url + "/hang", timeout=30), SlackChannel(hooks.url + "/slack")]
    )
    try:
        dispatcher.submit(critical_event())
        dispatcher.submit(critical_event())
        hooks.wait_for("/hang", 1)
        hooks.wait_for("/slack", 2)  # both delivered while the webhook is still stuck on the first
        assert len(hooks.posts["/hang"]) == 1
        hooks.release.set()
        hooks.wait_for("/hang", 2)
    finally:
        dispatcher.close(timeout=5)
