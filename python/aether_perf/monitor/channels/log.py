"""The log channel: one line per event to a file (appended) or to Python logging."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from aether_perf.monitor.channels.base import Channel

if TYPE_CHECKING:
    from aether_perf.monitor.alerts import AlertEvent

__all__ = ["LogChannel"]

_LEVELS = {"critical": logging.ERROR, "warning": logging.WARNING}


class LogChannel(Channel):
    name = "log"

    def __init__(self, path: str | Path | None = None, logger: str = "aether.alerts") -> None:
        self.path = Path(path) if path is not None else None
        self.logger = logging.getLogger(logger)
        self._lock = threading.Lock()

    def send(self, event: AlertEvent) -> None:
        if self.path is None:
            self.logger.log(_LEVELS.get(event.state, logging.INFO), "%s", event.message)
            return
        when = datetime.fromtimestamp(event.time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(f"{when} {event.state} {event.message}\n")
