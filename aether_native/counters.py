"""Counters: hardware and software event counts for this process through perf_event_open.

    from aether_native import Counters
    with Counters(["instructions", "cycles", "task-clock", "page-faults"]) as c:
        run()
    r = c.read()                  # aether_perf CounterReading
    r.ipc, r["task-clock"].scaled, r["cycles"].reason

How it counts (csrc/counters.c does the system calls):

- Events are opened as groups: all software events in one, hardware events in groups of at most
  ``HARDWARE_GROUP_SIZE`` (instructions and cycles first) so that a group fits on the PMU next to the
  NMI watchdog's counter. One ``read()`` per group returns every member with its enabled/running
  times, and multiplexed counts are scaled (``EventCount.scaled``).
- Default (``per_thread=False``): one group set per thread alive at ``start()``, opened with
  ``inherit``, so threads and child processes those threads start later are counted too (a forked
  child's counts join when the kernel folds them in; per-thread attribution is lost).
  ``per_thread=True``: one group set per thread, no inherit; a watcher thread scans
  ``/proc/self/task`` every ``scan_interval`` and opens groups for new threads (a thread that lives
  less than that is missed); forked processes are not counted.
- Kernel-mode counting is tried first; when the kernel refuses it (EACCES at
  perf_event_paranoid >= 2 without CAP_PERFMON) the event is counted user-only. Context switches
  and CPU migrations happen in the kernel, so user-only they read 0: those (and any software event
  that cannot be opened at all) are taken from /proc and getrusage instead, and say so.
- An event that cannot be counted is reported unavailable with the errno and what it means --
  never as zero.
"""

from __future__ import annotations

import errno as errno_codes
import os
import resource
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from aether_perf.errors import InvalidArgument, SamplerStateError
from aether_perf.model.counters import SOURCE_PERF, SOURCE_PROCFS, CounterReading, EventCount
from aether_perf.units import parse_duration

from aether_native import _core

__all__ = [
    "DEFAULT_EVENTS",
    "EVENTS",
    "HARDWARE_EVENTS",
    "SOFTWARE_EVENTS",
    "Counters",
    "EventSpec",
    "resolve_events",
    "unavailable_reason",
]

# linux/perf_event.h
PERF_TYPE_HARDWARE = 0
PERF_TYPE_SOFTWARE = 1
PERF_TYPE_HW_CACHE = 3


@dataclass(frozen=True, slots=True)
class EventSpec:
    """A named event: perf type and config, and whether it needs the PMU."""

    name: str
    type: int
    config: int

    @property
    def hardware(self) -> bool:
        return self.type != PERF_TYPE_SOFTWARE


def _cache(cache: int, op: int, result: int) -> int:
    return cache | (op << 8) | (result << 16)


_L1D, _LLC, _DTLB = 0, 2, 3
_READ, _ACCESS, _MISS = 0, 0, 1

HARDWARE_EVENTS: dict[str, EventSpec] = {
    spec.name: spec
    for spec in (
        EventSpec("cycles", PERF_TYPE_HARDWARE, 0),
        EventSpec("instructions", PERF_TYPE_HARDWARE, 1),
        EventSpec("cache-references", PERF_TYPE_HARDWARE, 2),
        EventSpec("cache-misses", PERF_TYPE_HARDWARE, 3),
        EventSpec("branches", PERF_TYPE_HARDWARE, 4),
        EventSpec("branch-misses", PERF_TYPE_HARDWARE, 5),
        EventSpec("bus-cycles", PERF_TYPE_HARDWARE, 6),
        EventSpec("stalled-cycles-frontend", PERF_TYPE_HARDWARE, 7),
        EventSpec("stalled-cycles-backend", PERF_TYPE_HARDWARE, 8),
        EventSpec("ref-cycles", PERF_TYPE_HARDWARE, 9),
        EventSpec("L1-dcache-loads", PERF_TYPE_HW_CACHE, _cache(_L1D, _READ, _ACCESS)),
        EventSpec("L1-dcache-load-misses", PERF_TYPE_HW_CACHE, _cache(_L1D, _READ, _MISS)),
        EventSpec("LLC-loads", PERF_TYPE_HW_CACHE, _cache(_LLC, _READ, _ACCESS)),
        EventSpec("LLC-load-misses", PERF_TYPE_HW_CACHE, _cache(_LLC, _READ, _MISS)),
        EventSpec("dTLB-load-misses", PERF_TYPE_HW_CACHE, _cache(_DTLB, _READ, _MISS)),
    )
}
SOFTWARE_EVENTS: dict[str, EventSpec] = {
    spec.name: spec
    for spec in (
        EventSpec("cpu-clock", PERF_TYPE_SOFTWARE, 0),
        EventSpec("task-clock", PERF_TYPE_SOFTWARE, 1),
        EventSpec("page-faults", PERF_TYPE_SOFTWARE, 2),
        EventSpec("context-switches", PERF_TYPE_SOFTWARE, 3),
        EventSpec("cpu-migrations", PERF_TYPE_SOFTWARE, 4),
        EventSpec("minor-faults", PERF_TYPE_SOFTWARE, 5),
        EventSpec("major-faults", PERF_TYPE_SOFTWARE, 6),
    )
}
EVENTS: dict[str, EventSpec] = {**HARDWARE_EVENTS, **SOFTWARE_EVENTS}
#: perf's other spellings of the same events.
ALIASES = {
    "cpu-cycles": "cycles",
    "branch-instructions": "branches",
    "faults": "page-faults",
    "cs": "context-switches",
    "migrations": "cpu-migrations",
    "idle-cycles-frontend": "stalled-cycles-frontend",
    "idle-cycles-backend": "stalled-cycles-backend",
}
DEFAULT_EVENTS: tuple[str, ...] = (
    "task-clock",
    "context-switches",
    "cpu-migrations",
    "page-faults",
    "cycles",
    "instructions",
    "cache-references",
    "cache-misses",
    "branches",
    "branch-misses",
)
#: Hardware events per group: 4 general-purpose counters is the common floor on x86 (one may be
#: taken by the NMI watchdog, but cycles and instructions use fixed counters on Intel).
HARDWARE_GROUP_SIZE = 4
#: Software events whose counts come from the kernel side of the program; user-only they read 0.
_KERNEL_SIDE = frozenset({"context-switches", "cpu-migrations"})
#: Where /proc can stand in for a software event.
_PROCFS_EVENTS = frozenset({"task-clock", "page-faults", "context-switches", "cpu-migrations"})


def resolve_events(names: Iterable[str] | str) -> list[EventSpec]:
    """Event names (a list, or one comma-separated string) -> specs, aliases resolved, duplicates
    dropped; an unknown name raises InvalidArgument listing the known ones."""
    if isinstance(names, str):
        names = [part for part in names.split(",")]
    specs: list[EventSpec] = []
    for raw in names:
        name = raw.strip()
        name = ALIASES.get(name, name)
        if name not in EVENTS:
            known = ", ".join(sorted(EVENTS))
            raise InvalidArgument(f"unknown event {raw.strip()!r} (known events: {known})")
        if EVENTS[name] not in specs:
            specs.append(EVENTS[name])
    if not specs:
        raise InvalidArgument("no events given")
    return specs


def unavailable_reason(err: int, paranoid: int | None) -> str:
    """Why perf_event_open refused an event, in words a user can act on."""
    name = errno_codes.errorcode.get(err, str(err))
    if err == errno_codes.ENOENT:
        return "ENOENT: this CPU/PMU does not provide the event (no PMU, e.g. a VM without a virtual PMU)"
    if err in (errno_codes.EOPNOTSUPP, errno_codes.ENOTSUP):
        return f"{name}: the hardware feature is absent (e.g. no sampling/overflow support)"
    if err == errno_codes.ENODEV:
        return "ENODEV: the PMU for this event does not exist on this machine"
    if err in (errno_codes.EACCES, errno_codes.EPERM):
        if paranoid is None:
            setting = "kernel.perf_event_paranoid could not be read"
        else:
            setting = f"kernel.perf_event_paranoid is {paranoid}"
        return (
            f"{name}: permission denied ({setting}); lower it (sysctl -w kernel.perf_event_paranoid=1, "
            "or 2 for user-only counting) or grant CAP_PERFMON"
        )
    if err == errno_codes.ENOSYS:
        return "ENOSYS: perf_event_open is not available (kernel without perf events, or blocked by seccomp)"
    if err == errno_codes.EMFILE:
        return "EMFILE: too many open files for one more counter"
    if err == errno_codes.ESRCH:
        return "ESRCH: the thread exited before its counter could be opened"
    return f"{name}: {os.strerror(err)}"


class _ThreadCounters:
    """The groups counting one thread (inherit: and what it starts)."""

    def __init__(self, tid: int, groups: list[tuple[list[int], _core.CounterGroup]]) -> None:
        self.tid = tid
        self.groups = groups  # (indices into Counters._specs, group)

    def read(self, n: int) -> list[tuple[int, int, int] | None]:
        out: list[tuple[int, int, int] | None] = [None] * n
        for indices, group in self.groups:
            for index, value in zip(indices, group.read(), strict=True):
                out[index] = value
        return out

    def close(self) -> None:
        for _, group in self.groups:
            group.close()


class Counters:
    """Count ``events`` (names as ``perf stat`` spells them) for this process from ``start()``.

    ``per_thread``: one count per thread (``reading.threads``) instead of inherited totals.
    ``inherit`` (default: the opposite of ``per_thread``): include threads and processes started
    after ``start()``. ``user_only``: count user mode only, as an unprivileged process must at
    perf_event_paranoid 2 (kernel-side software events then come from /proc).
    """

    def __init__(
        self,
        events: Iterable[str] | str = DEFAULT_EVENTS,
        *,
        per_thread: bool = False,
        inherit: bool | None = None,
        user_only: bool = False,
        scan_interval: float | str = 0.01,
    ) -> None:
        self._specs = resolve_events(events)
        if inherit is None:
            inherit = not per_thread
        if per_thread and inherit:
            raise InvalidArgument(
                "per_thread and inherit exclude each other: inherited counts fold new threads into "
                "the thread that started them"
            )
        self.per_thread = per_thread
        self.inherit = inherit
        self.user_only = user_only
        self.scan_interval = parse_duration(scan_interval, name="scan_interval", minimum=0.001, maximum=10.0)
        self.paranoid = _core.perf_event_paranoid()
        self._threads: dict[int, _ThreadCounters] = {}
        self._errors: dict[int, int] = {}  # spec index -> errno (from the first thread's open)
        self._user_only: set[int] = set()
        self._procfs: set[int] = set()  # spec indices counted from /proc instead
        self._procfs_notes: dict[int, str] = {}
        self._procfs_base: dict[str, dict[int | None, int]] = {}
        self._lock = threading.Lock()
        self._running = False
        self._pid = 0
        self._start_ns = 0
        self._final: CounterReading | None = None
        self._watcher: threading.Thread | None = None
        self._watcher_tid = 0
        self._stop_watch = threading.Event()

    @property
    def events(self) -> list[str]:
        return [spec.name for spec in self._specs]

    @property
    def running(self) -> bool:
        return self._running and self._pid == os.getpid()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<Counters {','.join(self.events)} {state}>"

    def __enter__(self) -> Counters:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.running:
            self.stop()

    # -- start / stop ------------------------------------------------------------------------

    def start(self) -> Counters:
        if self.running:
            raise SamplerStateError("these Counters are already running")
        self._pid = os.getpid()
        self._final = None
        self._threads.clear()
        self._errors.clear()
        self._user_only.clear()
        self._procfs.clear()
        self._procfs_notes.clear()
        me = threading.get_native_id()
        tids = [me] + [tid for tid in _task_ids() if tid != me]
        for tid in tids:
            counters = self._open_thread(0 if tid == me else tid, tid, first=tid == me)
            if counters is not None:
                self._threads[tid] = counters
        self._choose_procfs()
        self._start_ns = time.monotonic_ns()
        self._procfs_base = {spec.name: self._procfs_values(spec.name) for spec in self._fallbacks()}
        for counters in self._threads.values():
            for _, group in counters.groups:
                group.reset()
                group.enable()
        self._running = True
        if self.per_thread:
            self._stop_watch.clear()
            self._watcher = threading.Thread(target=self._watch, name="aether-counters-watch", daemon=True)
            self._watcher.start()
        return self

    def stop(self) -> CounterReading:
        """Stop counting; returns (and keeps, for ``read()``) the final reading."""
        if not self.running:
            raise SamplerStateError("these Counters are not running")
        if self._watcher is not None:
            self._stop_watch.set()
            self._watcher.join()
            self._watcher = None
        with self._lock:
            for counters in self._threads.values():
                for _, group in counters.groups:
                    group.disable()
        final = self._read()
        with self._lock:
            for counters in self._threads.values():
                counters.close()
            self._threads.clear()
        self._running = False
        self._final = final
        return final

    def read(self) -> CounterReading:
        """The counts since ``start()`` (while running: now; after ``stop()``: as at the stop)."""
        if self._final is not None and not self.running:
            return self._final
        if not self.running:
            raise SamplerStateError(
                "these Counters were never started (or were started in the parent process)"
            )
        return self._read()

    def group_read_ns(self, repeat: int = 10000) -> float:
        """Mean cost of one group read() in ns, on the calling thread's first group."""
        counters = self._threads.get(threading.get_native_id())
        if counters is None or not counters.groups:
            raise SamplerStateError("no counter group is open on this thread")
        return counters.groups[0][1].read_ns(repeat)

    def availability(self) -> dict[str, str]:
        """Event name -> "" when counted by perf_event, else how (procfs) or why not."""
        reading = self.read()
        return {name: event.reason or event.note for name, event in reading.events.items()}

    # -- opening -----------------------------------------------------------------------------

    def _partition(self) -> list[list[int]]:
        software = [i for i, spec in enumerate(self._specs) if not spec.hardware]
        order = {"instructions": 0, "cycles": 1}
        hardware = sorted(
            (i for i, spec in enumerate(self._specs) if spec.hardware),
            key=lambda i: order.get(self._specs[i].name, 2),
        )
        groups = [software] if software else []
        groups += [
            hardware[k : k + HARDWARE_GROUP_SIZE] for k in range(0, len(hardware), HARDWARE_GROUP_SIZE)
        ]
        return groups

    def _open_thread(self, target: int, tid: int, first: bool) -> _ThreadCounters | None:
        groups: list[tuple[list[int], _core.CounterGroup]] = []
        for indices in self._partition():
            if first:
                group = _core.CounterGroup(
                    [(self._specs[i].type, self._specs[i].config) for i in indices],
                    tid=target,
                    inherit=self.inherit,
                    user_only=self.user_only,
                )
                for index, err, user in zip(indices, group.errors(), group.user_only(), strict=True):
                    if err:
                        self._errors[index] = err
                    if user:
                        self._user_only.add(index)
            else:
                # Later threads open only what opened on the first (same events, same modes).
                wanted = [i for i in indices if i not in self._errors]
                if not wanted:
                    continue
                indices = wanted
                group = _core.CounterGroup(
                    [(self._specs[i].type, self._specs[i].config) for i in indices],
                    tid=target,
                    inherit=self.inherit,
                    user_only=self.user_only or any(i in self._user_only for i in indices),
                )
            groups.append((indices, group))
        if not first and all(all(group.errors()) for _, group in groups):
            for _, group in groups:
                group.close()
            return None  # the thread exited meanwhile (ESRCH)
        return _ThreadCounters(tid, groups)

    def _choose_procfs(self) -> None:
        for index, spec in enumerate(self._specs):
            if spec.name not in _PROCFS_EVENTS:
                continue
            if index in self._errors:
                reason = unavailable_reason(self._errors[index], self.paranoid)
                self._procfs.add(index)
                self._procfs_notes[index] = f"from /proc and getrusage: perf_event refused it ({reason})"
            elif spec.name in _KERNEL_SIDE and index in self._user_only:
                self._procfs.add(index)
                why = "as asked" if self.user_only else f"perf_event_paranoid={self.paranoid}"
                self._procfs_notes[index] = (
                    f"from /proc and getrusage: perf_event could count it only in user mode ({why}), "
                    "where it always reads 0"
                )

    def _fallbacks(self) -> list[EventSpec]:
        return [self._specs[i] for i in sorted(self._procfs)]

    def _watch(self) -> None:
        self._watcher_tid = threading.get_native_id()
        while not self._stop_watch.wait(self.scan_interval):
            for tid in _task_ids():
                if tid in self._threads or tid == self._watcher_tid:
                    continue
                counters = self._open_thread(tid, tid, first=False)
                if counters is None:
                    continue
                for _, group in counters.groups:
                    group.enable()
                with self._lock:
                    self._threads[tid] = counters

    # -- reading -----------------------------------------------------------------------------

    def _read(self) -> CounterReading:
        now = time.monotonic_ns()
        n = len(self._specs)
        with self._lock:
            per_thread = {tid: counters.read(n) for tid, counters in self._threads.items()}
        threads: dict[int, CounterReading] = {}
        if self.per_thread:
            for tid, values in per_thread.items():
                procfs = {spec.name: self._procfs_delta(spec.name, tid) for spec in self._fallbacks()}
                threads[tid] = CounterReading(
                    events=self._events([values], procfs), duration_ns=now - self._start_ns, time_ns=now
                )
        totals = {spec.name: self._procfs_delta(spec.name, None) for spec in self._fallbacks()}
        return CounterReading(
            events=self._events(list(per_thread.values()), totals),
            duration_ns=now - self._start_ns,
            time_ns=now,
            inherit=self.inherit,
            threads=threads,
        )

    def _events(
        self, rows: Sequence[list[tuple[int, int, int] | None]], procfs: dict[str, int | None]
    ) -> dict[str, EventCount]:
        events: dict[str, EventCount] = {}
        for index, spec in enumerate(self._specs):
            if index in self._procfs:
                value = procfs.get(spec.name)
                events[spec.name] = EventCount(
                    name=spec.name,
                    value=value,
                    available=value is not None,
                    reason=""
                    if value is not None
                    else "not countable here (perf_event and /proc both failed)",
                    errno=self._errors.get(index),
                    source=SOURCE_PROCFS,
                    note=self._procfs_notes.get(index, ""),
                )
                continue
            if index in self._errors:
                err = self._errors[index]
                events[spec.name] = EventCount(
                    name=spec.name,
                    value=None,
                    available=False,
                    reason=unavailable_reason(err, self.paranoid),
                    errno=err,
                )
                continue
            counted = [row[index] for row in rows if row[index] is not None]
            value = sum(item[0] for item in counted if item is not None)
            enabled = sum(item[1] for item in counted if item is not None)
            running = sum(item[2] for item in counted if item is not None)
            user = index in self._user_only
            events[spec.name] = EventCount(
                name=spec.name,
                value=value,
                enabled_ns=enabled,
                running_ns=running,
                source=SOURCE_PERF,
                user_only=user,
                note=self._user_note() if user else "",
            )
        return events

    def _user_note(self) -> str:
        if self.user_only:
            return "user mode only (as asked)"
        return f"user mode only: kernel-mode counting refused (perf_event_paranoid={self.paranoid})"

    def _procfs_values(self, name: str) -> dict[int | None, int]:
        """Current /proc (or getrusage) values of ``name``: key None is the process total."""
        values: dict[int | None, int] = {}
        total = _process_value(name)
        if total is not None:
            values[None] = total
        if self.per_thread or name == "cpu-migrations":
            for tid in _task_ids():
                value = _thread_value(name, tid)
                if value is not None:
                    values[tid] = value
        return values

    def _procfs_delta(self, name: str, tid: int | None) -> int | None:
        base = self._procfs_base.get(name, {})
        if tid is None and name == "cpu-migrations":
            # No process-wide counter: sum the live threads' (threads that exited are lost).
            now = self._procfs_values(name)
            deltas = [value - base.get(t, 0) for t, value in now.items() if t is not None]
            return sum(deltas) if deltas else None
        current = _process_value(name) if tid is None else _thread_value(name, tid)
        if current is None:
            return None
        return current - base.get(tid, 0)


def _task_ids() -> list[int]:
    try:
        return sorted(int(name) for name in os.listdir("/proc/self/task"))
    except OSError:
        return [threading.get_native_id()]


def _process_value(name: str) -> int | None:
    """Process-wide totals that include threads that have exited (getrusage, process CPU time)."""
    if name == "task-clock":
        return time.process_time_ns()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    if name == "page-faults":
        return usage.ru_minflt + usage.ru_majflt
    if name == "context-switches":
        return usage.ru_nvcsw + usage.ru_nivcsw
    return None


def _thread_value(name: str, tid: int) -> int | None:
    base = f"/proc/self/task/{tid}"
    try:
        if name == "task-clock":
            with open(f"{base}/schedstat") as handle:
                return int(handle.read().split()[0])
        if name == "page-faults":
            with open(f"{base}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            return int(fields[7]) + int(fields[9])  # minflt, majflt (fields 10 and 12)
        if name == "context-switches":
            total = 0
            with open(f"{base}/status") as handle:
                for line in handle:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
            return total
        if name == "cpu-migrations":
            with open(f"{base}/sched") as handle:
                for line in handle:
                    if line.startswith("se.nr_migrations"):
                        return int(line.split(":")[1])
            return None
    except (OSError, ValueError, IndexError):
        return None
    return None
