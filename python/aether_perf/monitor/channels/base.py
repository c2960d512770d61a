"""Channel interface and the Dispatcher that delivers events without ever blocking monitoring.

Every channel gets its own worker thread and queue: a channel that hangs or fails delays only its
own deliveries. A failed send is retried with exponential backoff (``backoff``, doubling, capped
at ``max_backoff``) up to ``attempts`` times, then given up and counted; the error goes to the
``on_error`` callback (the CLI prints it as a warning). Stats per channel say what happened.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from aether_perf.monitor.alerts import AlertEvent

__all__ = ["Channel", "ChannelStats", "Dispatcher", "probe_tcp"]

log = logging.getLogger("aether.monitor")


class Channel:
    """A notification channel: ``send`` delivers one event or raises; ``probe`` checks reachability."""

    name = "channel"

    def send(self, event: AlertEvent) -> None:
        raise NotImplementedError

    def probe(self) -> str | None:
        """None if the channel looks reachable, else why not (checked once at start-up)."""
        return None

    def close(self) -> None:
        """Release anything the channel holds (called once the dispatcher has stopped)."""


def probe_tcp(host: str, port: int, timeout: float = 2.0) -> str | None:
    """None if a TCP connection to host:port opens, else the reason."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return f"cannot connect to {host}:{port}: {exc.strerror or exc}"


def probe_url(url: str, timeout: float = 2.0) -> str | None:
    parts = urlsplit(url)
    if parts.hostname is None:
        return f"not a URL: {url!r}"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return probe_tcp(parts.hostname, port, timeout)


@dataclass
class ChannelStats:
    delivered: int = 0
    attempts: int = 0
    failures: int = 0
    given_up: int = 0
    last_error: str | None = None


_STOP = object()


class Dispatcher:
    """Fan events out to ``channels``, each on its own background worker with retries."""

    def __init__(
        self,
        channels: Sequence[Channel],
        *,
        attempts: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.channels = list(channels)
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.on_error = on_error
        self.stats = {id(c): ChannelStats() for c in self.channels}
        self._queues: list[queue.Queue[object]] = []
        self._threads: list[threading.Thread] = []
        self._closing = threading.Event()
        for channel in self.channels:
            q: queue.Queue[object] = queue.Queue()
            thread = threading.Thread(
                target=self._worker, args=(channel, q), name=f"aether-alert-{channel.name}", daemon=True
            )
            self._queues.append(q)
            self._threads.append(thread)
            thread.start()

    def stats_for(self, channel: Channel) -> ChannelStats:
        return self.stats[id(channel)]

    def probe(self) -> list[str]:
        """Warnings for channels that look unreachable now (monitoring goes on regardless)."""
        warnings = []
        for channel in self.channels:
            problem = channel.probe()
            if problem is not None:
                warnings.append(f"alert channel {channel.name}: {problem}; will retry when alerts fire")
        return warnings

    def submit(self, event: AlertEvent) -> None:
        """Queue ``event`` for every channel; returns at once."""
        for q in self._queues:
            q.put(event)

    def close(self, timeout: float = 5.0) -> None:
        """Stop: each queued event gets one more attempt (no more backoff waits), within ``timeout``
        overall; what still fails is given up and reported."""
        deadline = time.monotonic() + timeout
        self._closing.set()
        for q in self._queues:
            q.put(_STOP)
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for channel in self.channels:
            try:
                channel.close()
            except Exception:  # pragma: no cover - best effort at shutdown
                log.debug("closing channel %s failed", channel.name, exc_info=True)

    def _worker(self, channel: Channel, q: queue.Queue[object]) -> None:
        stats = self.stats[id(channel)]
        while True:
            item = q.get()
            if item is _STOP:
                return
            event: AlertEvent = item  # type: ignore[assignment]
            delay = self.backoff
            for attempt in range(1, self.attempts + 1):
                stats.attempts += 1
                try:
                    channel.send(event)
                except Exception as exc:
                    stats.failures += 1
                    stats.last_error = f"{type(exc).__name__}: {exc}"
                    if attempt == self.attempts or self._closing.is_set():
                        stats.given_up += 1
                        self._error(
                            f"alert channel {channel.name}: gave up on '{event.rule}' "
                            f"after {attempt} attempts: {stats.last_error}"
                        )
                        break
                    log.info("channel %s failed (attempt %d): %s", channel.name, attempt, exc)
                    self._closing.wait(delay)  # cut short when closing; the next failure gives up
                    delay = min(delay * 2, self.max_backoff)
                else:
                    stats.delivered += 1
                    break

    def _error(self, message: str) -> None:
        log.warning("%s", message)
        if self.on_error is not None:
            try:
                self.on_error(message)
            except Exception:  # pragma: no cover - a broken reporter must not kill the worker
                pass
