"""What the monitor measures: psutil collectors for the whole machine or one process tree.

A collector turns two successive psutil readings into one sample: gauges (CPU %, memory, threads)
are read as they are; cumulative counters (disk bytes, network bytes) are kept as totals (for the
Prometheus counters) and turned into per-second rates over the interval (for the dashboard and
alerts). Metric *groups* (``cpu,memory,io,network,threads``) are what users select; each group
yields a few named *series*, the unit alert rules and recordings speak.

Process-tree mode sums the process and all its descendants (re-read every sample, so children that
appear later count). Linux has no per-process network counters, so ``network`` there is the
machine's (documented in :data:`SERIES`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import psutil

from aether_perf.errors import AetherError, InvalidArgument

__all__ = [
    "GROUPS",
    "SERIES",
    "Collector",
    "MachineCollector",
    "ProcessGone",
    "ProcessTreeCollector",
    "Sample",
    "SeriesInfo",
    "parse_metrics",
]


@dataclass(frozen=True)
class SeriesInfo:
    """One measured series: its group, unit ("%", "B", "B/s", "") and a short label."""

    name: str
    group: str
    unit: str
    label: str


#: Every series a collector can produce, by name.
SERIES: dict[str, SeriesInfo] = {
    s.name: s
    for s in (
        SeriesInfo("cpu_percent", "cpu", "%", "CPU (machine: all CPUs = 100; process: one CPU = 100)"),
        SeriesInfo("memory_percent", "memory", "%", "memory used, % of RAM"),
        SeriesInfo("memory_bytes", "memory", "B", "memory used (machine) / resident set (process)"),
        SeriesInfo("disk_read_rate", "io", "B/s", "disk read"),
        SeriesInfo("disk_write_rate", "io", "B/s", "disk write"),
        SeriesInfo("net_recv_rate", "network", "B/s", "network in"),
        SeriesInfo("net_sent_rate", "network", "B/s", "network out"),
        SeriesInfo("threads", "threads", "", "threads"),
    )
}

#: The groups users select with --metrics, in display order.
GROUPS: tuple[str, ...] = ("cpu", "memory", "io", "network", "threads")


def parse_metrics(value: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Parse ``"cpu,memory"`` (or a list) into known group names, in canonical order.

    Raises InvalidArgument naming an unknown group and the valid ones.
    """
    items = value.split(",") if isinstance(value, str) else list(value)
    chosen = [item.strip().lower() for item in items if item.strip()]
    if not chosen:
        raise InvalidArgument(f"--metrics: no metric given (choose from {', '.join(GROUPS)})")
    for item in chosen:
        if item not in GROUPS:
            raise InvalidArgument(f"--metrics: unknown metric '{item}' (choose from {', '.join(GROUPS)})")
    return tuple(g for g in GROUPS if g in chosen)


def series_of(groups: tuple[str, ...]) -> tuple[str, ...]:
    """The series names the given groups produce."""
    return tuple(name for name, info in SERIES.items() if info.group in groups)


@dataclass
class Sample:
    """One reading: wall-clock time (epoch seconds), series values, and cumulative counters."""

    time: float
    values: dict[str, float]
    counters: dict[str, float] = field(default_factory=dict)


class ProcessGone(AetherError):
    """The monitored process exited (or never existed)."""

    def __init__(self, pid: int, message: str | None = None) -> None:
        super().__init__(message or f"process {pid} exited")
        self.pid = pid


class Collector:
    """Base class: ``collect()`` returns one Sample; rates need a previous reading (the first is 0)."""

    groups: tuple[str, ...]
    scope: str

    def __init__(self, groups: tuple[str, ...]) -> None:
        self.groups = groups
        self._last_time: float | None = None
        self._last_counters: dict[str, float] = {}

    def collect(self) -> Sample:
        now_mono = time.monotonic()
        values, counters = self._read()
        elapsed = None if self._last_time is None else now_mono - self._last_time
        for rate_name, counter_name in _RATES.items():
            if counter_name not in counters:
                continue
            previous = self._last_counters.get(counter_name)
            if elapsed is None or previous is None or elapsed <= 0:
                values[rate_name] = 0.0
            else:
                values[rate_name] = max(0.0, (counters[counter_name] - previous) / elapsed)
        self._last_time = now_mono
        self._last_counters = counters
        return Sample(time=time.time(), values=values, counters=counters)

    def _read(self) -> tuple[dict[str, float], dict[str, float]]:
        raise NotImplementedError


#: rate series -> the cumulative counter it is derived from
_RATES = {
    "disk_read_rate": "disk_read_bytes",
    "disk_write_rate": "disk_write_bytes",
    "net_recv_rate": "net_recv_bytes",
    "net_sent_rate": "net_sent_bytes",
}


def _net_counters(counters: dict[str, float]) -> None:
    net = psutil.net_io_counters()
    counters["net_recv_bytes"] = float(net.bytes_recv)
    counters["net_sent_bytes"] = float(net.bytes_sent)


class MachineCollector(Collector):
    """The whole machine: CPU over all CPUs, memory used, disks, network, threads (/proc/loadavg)."""

    def __init__(self, groups: tuple[str, ...]) -> None:
        super().__init__(groups)
        self.scope = "machine"
        if "cpu" in groups:
            psutil.cpu_percent(None)  # primes psutil's "since last call" reading

    def _read(self) -> tuple[dict[str, float], dict[str, float]]:
        values: dict[str, float] = {}
        counters: dict[str, float] = {}
        if "cpu" in self.groups:
            values["cpu_percent"] = float(psutil.cpu_percent(None))
        if "memory" in self.groups:
            mem = psutil.virtual_memory()
            values["memory_percent"] = float(mem.percent)
            values["memory_bytes"] = float(mem.total - mem.available)
        if "io" in self.groups:
            disk = psutil.disk_io_counters()
            counters["disk_read_bytes"] = float(disk.read_bytes) if disk else 0.0
            counters["disk_write_bytes"] = float(disk.write_bytes) if disk else 0.0
        if "network" in self.groups:
            _net_counters(counters)
        if "threads" in self.groups:
            values["threads"] = float(_machine_threads())
        return values, counters


def _machine_threads() -> int:
    """Threads on the machine: the 4th field of /proc/loadavg is runnable/total scheduling entities."""
    try:
        with open("/proc/loadavg", encoding="ascii") as handle:
            return int(handle.read().split()[3].split("/")[1])
    except (OSError, IndexError, ValueError):  # not Linux: count them the slow way
        return sum(p.info["num_threads"] or 0 for p in psutil.process_iter(["num_threads"]))


class ProcessTreeCollector(Collector):
    """One process and all its descendants, summed; raises ProcessGone once the root has exited."""

    def __init__(self, pid: int, groups: tuple[str, ...]) -> None:
        super().__init__(groups)
        self.pid = pid
        self.scope = f"pid {pid}"
        try:
            self._root = psutil.Process(pid)
            self._root.status()
        except psutil.NoSuchProcess:
            raise ProcessGone(pid, f"no process with PID {pid}") from None
        except psutil.AccessDenied:
            raise InvalidArgument(f"--pid {pid}: permission denied to read that process") from None
        self._total_memory = float(psutil.virtual_memory().total)
        # CPU seconds per process, so a process's CPU counts from when we first saw it.
        self._cpu_seen: dict[tuple[int, float], float] = {}
        self._cpu_last_time: float | None = None
        self._wall_last: float | None = None
        self._children: list[psutil.Process] = []
        self._children_scanned = -1e9

    #: Seconds between full scans for new descendants. Finding children means reading every
    #: process's /proc/PID/stat (Linux without CONFIG_PROC_CHILDREN has no cheaper way): about
    #: 5 ms of CPU on a box with 125 processes, so at short intervals it is done at most this often;
    #: known descendants are read every sample.
    rescan_interval = 1.0

    def _descendants(self) -> list[psutil.Process]:
        now = time.monotonic()
        if now - self._children_scanned >= self.rescan_interval:
            try:
                self._children = self._root.children(recursive=True)
            except psutil.NoSuchProcess:
                raise ProcessGone(self.pid) from None
            self._children_scanned = now
        return self._children

    def _alive(self) -> bool:
        try:
            return self._root.is_running() and self._root.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    def _read(self) -> tuple[dict[str, float], dict[str, float]]:
        if not self._alive():
            raise ProcessGone(self.pid)
        procs = [self._root, *self._descendants()]
        values: dict[str, float] = {}
        counters: dict[str, float] = {}
        cpu_delta = rss = threads = read = write = 0.0
        seen: dict[tuple[int, float], float] = {}
        for proc in procs:
            try:
                with proc.oneshot():
                    key = (proc.pid, proc.create_time())
                    if "cpu" in self.groups:
                        t = proc.cpu_times()
                        used = t.user + t.system
                        seen[key] = used
                        # A process born since the last sample counts all its CPU; one seen
                        # for the first time but older (the first sample) counts from now.
                        born_since = self._wall_last is not None and key[1] >= self._wall_last
                        cpu_delta += used - self._cpu_seen.get(key, 0.0 if born_since else used)
                    if "memory" in self.groups:
                        rss += proc.memory_info().rss
                    if "threads" in self.groups:
                        threads += proc.num_threads()
                    if "io" in self.groups:
                        try:
                            io = proc.io_counters()
                            read += io.read_bytes
                            write += io.write_bytes
                        except (psutil.AccessDenied, AttributeError):
                            pass
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue  # a child that exited between listing and reading
        now = time.monotonic()
        self._wall_last = time.time()
        if "cpu" in self.groups:
            if self._cpu_last_time is None or now <= self._cpu_last_time:
                values["cpu_percent"] = 0.0
            else:
                values["cpu_percent"] = 100.0 * cpu_delta / (now - self._cpu_last_time)
            self._cpu_seen = seen
            self._cpu_last_time = now
        if "memory" in self.groups:
            values["memory_bytes"] = rss
            values["memory_percent"] = 100.0 * rss / self._total_memory
        if "threads" in self.groups:
            values["threads"] = threads
        if "io" in self.groups:
            # Exited children's bytes leave the sum; keep the counter monotonic for Prometheus.
            counters["disk_read_bytes"] = max(read, self._last_counters.get("disk_read_bytes", 0.0))
            counters["disk_write_bytes"] = max(write, self._last_counters.get("disk_write_bytes", 0.0))
        if "network" in self.groups:
            _net_counters(counters)
        return values, counters
