"""Sampler: the public recording API over the C core.

    s = Sampler(interval="1ms", mode="cpu").start()
    ...
    profile = s.stop()          # an aether_perf.Profile

A private drain thread (a bare ``_thread`` thread, so it does not show in
``threading.enumerate()`` and is never sampled) empties the C ring every few milliseconds and
resolves code objects with the GIL; ``stop()`` drains what is left and builds the Profile.
"""

from __future__ import annotations

import _thread
import atexit
import os
import platform
import signal
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from aether_perf.errors import CounterUnavailable, InvalidArgument, SamplerBusyError, SamplerStateError
from aether_perf.units import parse_duration, parse_size

from aether_native import _core

if TYPE_CHECKING:
    from aether_perf.model import Profile

__all__ = ["DEFAULT_SIGNAL", "MAX_INTERVAL", "MIN_INTERVAL", "MODES", "Sampler"]

MODES = ("cpu", "wall")
#: Below 50us the signal round trip and frame walk (a few microseconds each) stop being small
#: next to the interval; above 1s a "sampling profile" has too few samples to mean anything.
MIN_INTERVAL = 50e-6
MAX_INTERVAL = 1.0
#: A real-time signal rather than SIGPROF, so a program that uses SIGPROF itself (setitimer,
#: signal.signal) neither loses its handler to us nor receives our ticks. AETHER_SIGNAL overrides.
DEFAULT_SIGNAL = int(signal.SIGRTMIN) + 3
#: How often the drain thread empties the ring: far below the time a full ring takes to fill
#: (16 MiB at 10 kHz x 10 threads x 50 frames is ~2 s), and rare enough to cost little GIL time.
DRAIN_PERIOD = 0.02
#: Trigger mode: the sampler thread sends no ticks, it only finds new threads (and opens their
#: overflow events) this often.
TRIGGER_SCAN_NS = 10_000_000
#: Events whose counts are nanoseconds: a profile triggered on them is a CPU-time profile.
_TIME_EVENTS = ("task-clock", "cpu-clock")

_lock = threading.Lock()
_active: Sampler | None = None


def _signal_number() -> int:
    value = os.environ.get("AETHER_SIGNAL")
    if not value:
        return DEFAULT_SIGNAL
    try:
        number = int(value) if value.isdigit() else int(getattr(signal.Signals, value.upper()))
    except (AttributeError, ValueError, KeyError):
        raise InvalidArgument(f"AETHER_SIGNAL must be a signal number or name, got {value!r}") from None
    if number in (signal.SIGKILL, signal.SIGSTOP) or not 0 < number < signal.NSIG:
        raise InvalidArgument(f"AETHER_SIGNAL cannot be {value!r}")
    return number


def _thread_names(tids: set[int]) -> tuple[dict[int, str], dict[int, str]]:
    """(Python thread names of the threads threading knows, OS names of the others). A thread is
    sampled as soon as it exists, but threading sets its native_id a moment later (in
    _bootstrap_inner): until then only the OS name ("python3") is known, so that one is kept
    provisional and looked up again at the next drain."""
    by_native = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
    known: dict[int, str] = {}
    provisional: dict[int, str] = {}
    for tid in tids:
        name = by_native.get(tid)
        if name is not None:
            known[tid] = name
            continue
        try:
            provisional[tid] = Path(f"/proc/self/task/{tid}/comm").read_text().strip() or f"Thread {tid}"
        except OSError:
            provisional[tid] = f"Thread {tid}"
    return known, provisional


class Sampler:
    """An in-process sampling profiler for every thread of this interpreter.

    ``interval``: mean time between samples, seconds or a string with a unit ("1ms", "250us"),
    50us to 1s. ``mode``: "cpu" samples threads that are running and weights each sample by the
    CPU time its thread used since its previous sample; "wall" samples every thread and weights by
    wall time, marking threads that did not run as idle. ``max_depth``: frames kept per sample
    (innermost first). Only one Sampler may run at a time in a process.

    ``trigger`` (counter-triggered sampling): an event name as ``aether stat`` takes them
    ("cache-misses", "page-faults", "task-clock"...); each thread is then sampled every ``period``
    events of it, through the perf event's overflow signal, instead of on a timer, and each
    sample weighs ``period`` (events; ns for task-clock/cpu-clock, which make a "cpu" profile).
    ``interval`` and ``mode`` do not apply. An event this machine cannot count raises
    CounterUnavailable naming why (e.g. ENOENT: no PMU).
    """

    def __init__(
        self,
        interval: float | str = "1ms",
        mode: str = "cpu",
        *,
        max_depth: int = 1024,
        ring_size: int | str = "16MiB",
        trigger: str | None = None,
        period: int | None = None,
        user_only: bool = False,
    ) -> None:
        self.interval = parse_duration(interval, name="interval", minimum=MIN_INTERVAL, maximum=MAX_INTERVAL)
        if mode not in MODES:
            raise InvalidArgument(f"mode must be 'cpu' or 'wall', got {mode!r}")
        self.mode = mode
        if (
            isinstance(max_depth, bool)
            or not isinstance(max_depth, int)
            or not 1 <= max_depth <= _core.MAX_DEPTH
        ):
            raise InvalidArgument(
                f"max_depth must be an integer from 1 to {_core.MAX_DEPTH}, got {max_depth!r}"
            )
        self.max_depth = max_depth
        self.ring_size = parse_size(ring_size, name="ring_size", minimum=64 * 1024, maximum=1 << 32)
        self.trigger: str | None = None
        self.period = 0
        self.user_only = user_only
        self._trigger_event = (0, 0)
        if trigger is not None:
            from aether_native.counters import resolve_events

            spec = resolve_events([trigger])[0]
            if isinstance(period, bool) or not isinstance(period, int) or period < 1:
                raise InvalidArgument(f"period must be a whole number of events >= 1, got {period!r}")
            if mode != "cpu":
                raise InvalidArgument("trigger sampling weighs samples by events: mode does not apply")
            self.trigger, self.period, self._trigger_event = spec.name, period, (spec.type, spec.config)
            self.mode = "cpu" if spec.name in _TIME_EVENTS else "events"
        elif period is not None:
            raise InvalidArgument("period needs a trigger event (Sampler(trigger='page-faults', period=...))")
        self.profile: Profile | None = None
        self._session: _core.Session | None = None
        self._running = False
        self._pid = 0
        self._start_wall = 0.0
        self._start_ns = 0
        self._stop_requested = threading.Event()
        self._drain_lock = threading.Lock()
        self._drain_done = threading.Event()
        self._names: dict[int, str] = {}  # Python thread names: final
        self._os_names: dict[int, str] = {}  # OS names of threads threading did not know (yet)
        self._drain_tid = 0

    # -- state ---------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._running and self._pid == os.getpid()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        if self.trigger is not None:
            return f"<Sampler trigger={self.trigger} period={self.period} {state}>"
        return f"<Sampler {self.mode} interval={self.interval:g}s {state}>"

    # -- start / stop --------------------------------------------------------------------------

    def start(self) -> Sampler:
        global _active
        with _lock:
            if self.running:
                raise SamplerStateError("this Sampler is already running")
            if _active is not None and _active.running:
                raise SamplerBusyError(
                    "another Sampler is already running in this process; stop it first "
                    "(the sampling machinery is process-wide)"
                )
            signo = _signal_number()
            session = _core.Session()
            mode = _core.MODE_CPU if self.mode == "cpu" else _core.MODE_WALL
            if self.trigger is not None:
                mode = _core.MODE_TRIGGER
            # The drain thread excludes itself before the first tick, so it is never sampled.
            self._session = session
            self._stop_requested.clear()
            self._drain_done.clear()
            ready = threading.Event()
            _thread.start_new_thread(self._drain_loop, (ready,))
            ready.wait()
            try:
                interval_ns = int(self.interval * 1e9) if self.trigger is None else TRIGGER_SCAN_NS
                start_ns = session.start(
                    mode,
                    interval_ns,
                    self.max_depth,
                    signo,
                    self.ring_size,
                    *self._trigger_event,
                    self.period,
                    self.user_only,
                )
            except OSError as exc:
                self._session = None
                self._stop_requested.set()
                self._drain_done.wait()
                if exc.errno == 16:
                    raise SamplerBusyError(str(exc)) from None
                if self.trigger is not None and exc.errno:
                    from aether_native.counters import unavailable_reason

                    reason = unavailable_reason(exc.errno, _core.perf_event_paranoid())
                    raise CounterUnavailable(f"cannot sample on {self.trigger}: {reason}") from None
                raise
            self._start_wall = time.time()
            self._start_ns = start_ns
            self._pid = os.getpid()
            self._running = True
            self.profile = None
            self._names = {}
            self._os_names = {}
            _active = self
        return self

    def stop(self) -> Profile:
        """Stop sampling and return the Profile (also kept as ``self.profile``).

        Thread-safe: may be called from another thread than ``start()``."""
        frames, stacks, columns, stats, end_ns = self._halt()
        self.profile = self._build_profile(frames, stacks, columns, stats, end_ns)
        return self.profile

    def _halt(
        self,
    ) -> tuple[list[tuple[str, str, int, int]], list[tuple[int, ...]], dict[str, bytes], dict[str, int], int]:
        """Stop the C core and the drain thread; return what was recorded, unbuilt."""
        global _active
        with _lock:
            if not self._running:
                raise SamplerStateError(
                    "Sampler.stop() called but the sampler is not running; call start() first"
                )
            if self._pid != os.getpid():
                self._running = False
                raise SamplerStateError(
                    f"this Sampler was started in process {self._pid}; a forked child does not inherit it"
                )
            session = self._session
            assert session is not None
            self._running = False
            session.stop()
            end_ns = _core.clock_ns()
            self._stop_requested.set()
            if _thread.get_ident() != self._drain_ident:
                self._drain_done.wait()
            with self._drain_lock:
                session.drain()
                self._name_new_threads(session)
                session.finish()
            stats = _core.stats()
            frames, stacks, columns = session.take()
            self._session = None
            if _active is self:
                _active = None
        return frames, stacks, columns, stats, end_ns

    def __enter__(self) -> Sampler:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.running:
            self.stop()

    # -- draining ------------------------------------------------------------------------------

    _drain_ident = -1

    def _drain_loop(self, ready: threading.Event) -> None:
        self._drain_ident = _thread.get_ident()
        tid = _core.exclude_current_thread()
        ready.set()
        try:
            while not self._stop_requested.wait(DRAIN_PERIOD):
                with self._drain_lock:
                    session = self._session
                    if session is None or not session.running:
                        continue
                    session.drain()
                    self._name_new_threads(session)
        finally:
            _core.unexclude_thread(tid)
            self._drain_done.set()

    def _name_new_threads(self, session: _core.Session) -> None:
        unnamed = session.thread_ids() - self._names.keys()
        if unnamed:
            known, provisional = _thread_names(unnamed)
            self._names.update(known)
            for tid in known:
                self._os_names.pop(tid, None)
            self._os_names.update(provisional)

    # -- building the Profile ------------------------------------------------------------------

    def _build_profile(
        self,
        frames: list[tuple[str, str, int, int]],
        stacks: list[tuple[int, ...]],
        columns: dict[str, bytes],
        stats: dict[str, int],
        end_ns: int,
    ) -> Profile:
        # numpy and the model are imported here, after sampling, not in the profiled program's
        # startup: numpy starts BLAS threads and takes ~100 ms to import.
        import numpy as np
        from aether_perf.model import FLAG_IDLE, Frame, Profile, ProfileMeta, ThreadInfo

        tid = np.frombuffer(columns["tid"], dtype=np.int64).copy()
        stack = np.frombuffer(columns["stack"], dtype=np.int32).copy()
        time_ns = np.frombuffer(columns["time_ns"], dtype=np.int64).copy()
        weight_ns = np.frombuffer(columns["weight_ns"], dtype=np.int64).copy()
        flags = np.frombuffer(columns["flags"], dtype=np.uint8).copy()
        # Threads with no Python frames that never ran (a BLAS pool parked on a futex, say) would
        # fill a wall-mode profile with nothing but idle time: leave them out, as py-spy does.
        # Their CPU, if they used any, stays (cpu mode, or non-idle wall samples).
        empty = (
            np.array([len(s) == 0 for s in stacks], dtype=bool)[stack] if len(stacks) else np.ones(0, bool)
        )
        quiet = empty & ((flags & FLAG_IDLE) != 0)
        keep = np.ones(len(tid), dtype=bool)
        for t in np.unique(tid[quiet]).tolist():
            rows = tid == t
            if quiet[rows].all():
                keep &= ~rows
        tid, stack, time_ns, weight_ns, flags = (
            tid[keep],
            stack[keep],
            time_ns[keep],
            weight_ns[keep],
            flags[keep],
        )
        names = {**self._os_names, **self._names}
        main = threading.main_thread().native_id
        if main is not None and main in names:
            names[main] = threading.main_thread().name
        meta = ProfileMeta(
            mode=self.mode,
            interval=self.interval,
            start_time=self._start_wall,
            duration=(end_ns - self._start_ns) / 1e9,
            python_version=platform.python_version(),
            sample_count=len(tid),
            dropped=int(stats["records_dropped"]),
            program=" ".join(sys.argv),
            extra={
                "sampler": stats,
                "max_depth": self.max_depth,
                "pid": self._pid,
                # time_ns counts from this CLOCK_MONOTONIC instant (time.monotonic_ns()), so
                # spans and other events recorded on that clock line up with the samples.
                "start_monotonic_ns": self._start_ns,
            },
        )
        if self.trigger is not None:
            unit = "ns" if self.trigger in _TIME_EVENTS else "events"
            meta.extra["trigger"] = {"event": self.trigger, "period": self.period, "unit": unit}
        return Profile(
            [Frame(function=q, file=f, line=line, first_line=first) for q, f, line, first in frames],
            stacks,
            {t: ThreadInfo(t, names.get(t, f"Thread {t}")) for t in np.unique(tid).tolist()},
            stack=stack,
            tid=tid,
            time_ns=time_ns,
            weight_ns=weight_ns,
            flags=flags,
            meta=meta,
        )


def _stop_at_exit() -> None:
    """A sampler still running at interpreter exit is stopped before finalization starts, so no
    handler ever walks frames being torn down."""
    sampler = _active
    if sampler is not None and sampler.running:
        # Nobody can use a Profile now: skip building it. (Building imports numpy, which with busy
        # threads still holding the GIL at exit can take seconds of GIL hand-offs.)
        sampler._halt()


def _after_fork_in_child() -> None:
    # The C core already reset itself (pthread_atfork); here the Python side learns that no
    # sampler runs in this process, so the child may start its own.
    global _active, _lock
    _lock = threading.Lock()
    _active = None


atexit.register(_stop_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)
