"""The sampling loop: ``Monitor(metrics, interval).run(callback)``.

The loop sleeps to absolute deadlines (so a slow callback does not make the period drift), keeps the
last ``history`` values of every series for sparklines and trend fits, and can be paused, re-timed
and stopped from another thread (the dashboard's keys do exactly that).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from aether_perf.monitor.metrics import (
    Collector,
    MachineCollector,
    ProcessTreeCollector,
    Sample,
    parse_metrics,
    series_of,
)
from aether_perf.units import parse_duration

__all__ = ["MAX_INTERVAL", "MIN_INTERVAL", "Monitor"]

MIN_INTERVAL = 0.05
MAX_INTERVAL = 3600.0


class Monitor:
    """Sample ``metrics`` (groups: "cpu,memory,io,network,threads") every ``interval``.

    ``pid`` monitors that process and its descendants instead of the machine. ``history`` is how
    many points per series are kept (``self.history[name]`` is a deque of ``(time, value)``).
    """

    def __init__(
        self,
        metrics: str | list[str] | tuple[str, ...] = "cpu,memory,io,network,threads",
        interval: str | float = 1.0,
        *,
        pid: int | None = None,
        history: int = 60,
        collector: Collector | None = None,
    ) -> None:
        self.groups = parse_metrics(metrics)
        self._interval = parse_duration(interval, name="interval", minimum=MIN_INTERVAL, maximum=MAX_INTERVAL)
        if history < 2:
            from aether_perf.errors import InvalidArgument

            raise InvalidArgument(f"history: must be at least 2 points, got {history}")
        self.series = series_of(self.groups)
        self.collector = collector or (
            MachineCollector(self.groups) if pid is None else ProcessTreeCollector(pid, self.groups)
        )
        self.history: dict[str, deque[tuple[float, float]]] = {
            name: deque(maxlen=history) for name in self.series
        }
        self.samples = 0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._paused = False

    @property
    def interval(self) -> float:
        return self._interval

    @interval.setter
    def interval(self, value: str | float) -> None:
        self._interval = parse_duration(value, name="interval", minimum=MIN_INTERVAL, maximum=MAX_INTERVAL)
        self._wake.set()  # the new period applies from now, not after the old sleep

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self, paused: bool = True) -> None:
        """Stop taking samples (True) or resume (False); the loop keeps running."""
        self._paused = paused
        self._wake.set()

    def stop(self) -> None:
        """Make ``run`` return after the current sample (callable from any thread or the callback)."""
        self._stop.set()
        self._wake.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def sample(self) -> Sample:
        """Take one sample now and add it to the history."""
        sample = self.collector.collect()
        for name, value in sample.values.items():
            if name in self.history:
                self.history[name].append((sample.time, value))
        self.samples += 1
        return sample

    def run(
        self,
        callback: Callable[[Sample], object],
        *,
        duration: float | None = None,
        count: int | None = None,
    ) -> None:
        """Call ``callback(sample)`` every interval until ``stop()``, ``duration`` seconds or ``count``
        samples. Exceptions from the collector (ProcessGone) and the callback propagate."""
        end = None if duration is None else time.monotonic() + duration
        deadline = time.monotonic()
        taken = 0
        while not self._stop.is_set():
            if not self._paused:
                callback(self.sample())
                taken += 1
                if count is not None and taken >= count:
                    return
            deadline += self._interval
            now = time.monotonic()
            if deadline < now:  # fell behind (slow callback, suspended): restart the grid
                deadline = now + self._interval
            if end is not None and deadline > end:
                self._sleep(end - now)
                return
            self._sleep(deadline - now)

    def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        if seconds > 0:
            self._wake.wait(seconds)
