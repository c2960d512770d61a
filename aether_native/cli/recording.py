"""A Sampler run with an optional time limit: `--duration` stops sampling, not the program."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from aether_native.cli.errors import RunError, from_exception

if TYPE_CHECKING:
    from aether_perf.model import Profile

    from aether_native import Sampler


class Recording:
    """Start a Sampler; stop it after `duration` seconds (from a timer thread) or at `finish()`.

    Whichever stops first keeps the Profile; the other gets the same Profile back.
    """

    def __init__(self, sampler: Sampler, duration: float | None = None) -> None:
        self._sampler = sampler
        self._duration = duration
        self._lock = threading.Lock()
        self._profile: Profile | None = None
        self._error: BaseException | None = None
        self._timer: threading.Timer | None = None
        self.expired = False

    def start(self) -> None:
        try:
            self._sampler.start()
        except Exception as exc:  # bad settings (AETHER_SIGNAL) -> 2, a system failure -> 1
            raise from_exception(exc, "could not start the sampler") from None
        if self._duration is not None:
            self._timer = threading.Timer(self._duration, self._expire)
            self._timer.name = "aether-duration"
            self._timer.daemon = True
            self._timer.start()

    @property
    def own_threads(self) -> set[int]:
        """Native ids of the threads this Recording started (the --duration timer), to leave out."""
        tid = self._timer.native_id if self._timer is not None else None
        return {tid} if tid is not None else set()

    def finish(self) -> Profile:
        """Stop sampling now (unless --duration already did) and return the Profile."""
        if self._timer is not None:
            self._timer.cancel()
        profile = self._stop()
        if profile is None:
            raise RunError(f"could not stop the sampler: {self._error}")
        return profile

    def _expire(self) -> None:
        self.expired = True
        self._stop()

    def _stop(self) -> Profile | None:
        with self._lock:
            if self._profile is None and self._error is None:
                try:
                    self._profile = self._sampler.stop()
                except Exception as exc:  # reported by finish()
                    self._error = exc
            return self._profile
