"""Sampler overhead benchmark: aether-native against no profiler and against its peers.

    python bench/sampler_overhead.py [--rounds 5] [--quick] [--json out.json] [--only NAMES]

Runs the fixed CPU-bound workload of ``workload_cpu.py`` (three functions taking about 60/30/10 %
of the time) in a fresh process per measurement: with no profiler, under aether-native at 1 and
10 kHz in cpu and wall mode, and, when they are installed (the ``bench`` extra), under py-spy,
pyinstrument, yappi and cProfile. Configurations are interleaved: every round runs each one once,
in a new random order, so slow drifts of the machine hit all of them alike. Prints, per
configuration, the median workload wall time over the rounds and its ratio to the baseline median
(overhead = ratio - 1); for the samplers also the achieved sample rate, dropped samples and the
attribution error (max over the three functions of |profiled self share - true share|, in
percentage points, the true shares being measured with ``time.perf_counter`` in the baseline
runs). Nothing is asserted; the targets are printed beside the figures. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.metadata
import json
import math
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORKLOAD = HERE / "workload_cpu.py"

sys.path.insert(0, str(HERE))
from workload_cpu import CHUNKS, DEFAULT_DEPTH, ENTRY, PARTS, RESULT_PREFIX  # noqa: E402

RUN_TIMEOUT = 300.0
QUICK_SCALE = 0.4
QUICK_ROUNDS = 3
WIDTH = 110
#: Below this fraction of its wall time on a CPU, the baseline was competing with other processes.
BUSY_WARNING = 0.97


# -- configurations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    name: str
    tool: str  # "baseline", "aether", "py-spy", "pyinstrument", "yappi", "cprofile"
    label: str
    interval: float | None = None  # seconds between samples, for samplers
    mode: str | None = None  # aether mode
    overhead_target: float | None = None  # fraction, printed beside the measured overhead
    rate_target: float | None = None  # fraction of the requested rate
    attribution_target: float | None = None  # percentage points
    clock: str = "wall"  # what the profiler attributes: "cpu" time or "wall" time

    @property
    def sampler(self) -> bool:
        return self.interval is not None

    @property
    def requested_hz(self) -> float | None:
        return 1.0 / self.interval if self.interval else None


def all_configs() -> list[Config]:
    configs = [Config("baseline", "baseline", "no profiler")]
    for mode in ("cpu", "wall"):
        configs.append(
            Config(f"aether-{mode}-1k", "aether", f"aether {mode} 1 kHz", 1e-3, mode, 0.02, 0.95, 1.0, mode)
        )
        configs.append(
            Config(f"aether-{mode}-10k", "aether", f"aether {mode} 10 kHz", 1e-4, mode, 0.10, None, 1.0, mode)
        )
    configs += [
        Config("py-spy-1k", "py-spy", "py-spy 1 kHz (pausing)", 1e-3),
        Config("py-spy-10k", "py-spy", "py-spy 10 kHz (pausing)", 1e-4),
        Config("pyinstrument-1ms", "pyinstrument", "pyinstrument 1 ms", 1e-3),
        Config("pyinstrument-0.1ms", "pyinstrument", "pyinstrument 0.1 ms", 1e-4),
        Config("yappi-cpu", "yappi", "yappi (cpu clock)", clock="cpu"),
        Config("cprofile", "cprofile", "cProfile"),
    ]
    return configs


# -- environment -------------------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    """The environment of the measured processes: the in-place build of this checkout is found
    through PYTHONPATH unless aether_native is installed."""
    env = dict(os.environ)
    env["PYTHONHASHSEED"] = "0"
    try:
        importlib.metadata.version("aether-native")
        installed = True
    except importlib.metadata.PackageNotFoundError:
        installed = False
    if not installed and (REPO / "aether_native").is_dir():
        extra = [str(REPO), str(REPO / "python")]
        old = env.get("PYTHONPATH")
        env["PYTHONPATH"] = os.pathsep.join(extra + ([old] if old else []))
    return env


def find_py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("py-spy")


def available_tools(env: dict[str, str]) -> dict[str, str]:
    """tool -> "" when usable, else the reason it is skipped."""
    probe = (
        "import importlib, json\n"
        "out = {}\n"
        "for mod in ('aether_native', 'pyinstrument', 'yappi'):\n"
        "    try:\n"
        "        importlib.import_module(mod); out[mod] = ''\n"
        "    except Exception as e:\n"
        "        out[mod] = f'{type(e).__name__}: {e}'\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    found: dict[str, str] = json.loads(proc.stdout) if proc.returncode == 0 else {}
    status = {
        "baseline": "",
        "cprofile": "",
        "aether": found.get("aether_native", "import probe failed"),
        "pyinstrument": found.get("pyinstrument", "import probe failed"),
        "yappi": found.get("yappi", "import probe failed"),
        "py-spy": "" if find_py_spy() else "not installed",
    }
    return status


def kernel_hz() -> str:
    """CONFIG_HZ from the kernel config when readable, else a guess from jiffies."""
    release = platform.release()
    texts: list[str] = []
    try:
        texts.append(gzip.open("/proc/config.gz", "rt").read())
    except OSError:
        pass
    try:
        texts.append(Path(f"/boot/config-{release}").read_text())
    except OSError:
        pass
    for text in texts:
        match = re.search(r"^CONFIG_HZ=(\d+)", text, re.M)
        if match:
            return f"{match.group(1)} (CONFIG_HZ)"

    def jiffies() -> int | None:
        try:
            match = re.search(r"^jiffies: (\d+)", Path("/proc/timer_list").read_text(), re.M)
        except OSError:
            return None
        return int(match.group(1)) if match else None

    t0, j0 = time.monotonic(), jiffies()
    time.sleep(0.3)
    t1, j1 = time.monotonic(), jiffies()
    if j0 is None or j1 is None:
        return "unknown"
    estimate = (j1 - j0) / (t1 - t0)
    nearest = min((100, 250, 300, 1000), key=lambda hz: abs(hz - estimate))
    return f"~{nearest} (jiffies rate {estimate:.0f}/s)"


def machine_facts(tools: dict[str, str]) -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        clocksource = (
            Path("/sys/devices/system/clocksource/clocksource0/current_clocksource").read_text().strip()
        )
    except OSError:
        clocksource = "unknown"
    versions: dict[str, str] = {}
    for dist in ("aether-native", "py-spy", "pyinstrument", "yappi"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = "in-place build" if dist == "aether-native" and not tools["aether"] else "-"
    return {
        "nproc": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)),
        "cpu": model,
        "kernel": platform.release(),
        "kernel_hz": kernel_hz(),
        "clocksource": clocksource,
        "python": f"{platform.python_implementation()} {platform.python_version()} ({sys.executable})",
        "versions": versions,
        "loadavg_start": os.getloadavg(),
    }


# -- running one measurement -----------------------------------------------------------------------


@dataclass
class Run:
    config: str
    round: int
    ok: bool = True
    error: str = ""
    workload_s: float = math.nan
    thread_cpu_s: float = math.nan
    process_s: float = math.nan
    parts_s: dict[str, float] = field(default_factory=dict)
    shares: dict[str, float] | None = None
    samples: int | None = None
    sampled_cpu_s: float | None = None
    dropped: int | None = None
    sampler: dict[str, int] | None = None
    helper_cpu_s: float | None = None  # aether: CPU of its sampler and drain threads
    lag_s: float | None = None  # py-spy: how far it fell behind its sampling schedule
    notes: list[str] = field(default_factory=list)

    @property
    def true_shares(self) -> dict[str, float]:
        """Each part's share of the workload's wall time, by perf_counter."""
        return {p: self.parts_s[p] / self.workload_s for p in PARTS}

    def own_shares(self, clock: str) -> dict[str, float]:
        """Each part's share as this run timed it, by wall time or by the thread's CPU time."""
        if clock == "cpu" and all(f"cpu:{p}" in self.parts_s for p in PARTS):
            return {p: self.parts_s[f"cpu:{p}"] / self.thread_cpu_s for p in PARTS}
        return self.true_shares


def workload_args(cfg: Config, scale: float, depth: int) -> list[str]:
    args = [str(WORKLOAD), "--scale", repr(scale), "--depth", str(depth)]
    if cfg.tool in ("aether", "pyinstrument", "yappi", "cprofile"):
        args += ["--profiler", cfg.tool]
    if cfg.interval is not None:
        args += ["--interval", repr(cfg.interval)]
    if cfg.mode is not None:
        args += ["--mode", cfg.mode]
    return args


def parse_py_spy_raw(path: Path) -> tuple[dict[str, int], int]:
    """Samples per part (leaf function) and in total, over the stacks that contain the workload."""
    counts = dict.fromkeys(PARTS, 0)
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        functions = [frame.rsplit(" (", 1)[0].rsplit(".", 1)[-1] for frame in stack.split(";")]
        if ENTRY not in functions:
            continue
        count = int(count_text)
        total += count
        if functions[-1] in counts:
            counts[functions[-1]] += count
    return counts, total


def run_one(cfg: Config, rnd: int, scale: float, depth: int, env: dict[str, str], py_spy: str | None) -> Run:
    run = Run(cfg.name, rnd)
    cmd = [sys.executable, *workload_args(cfg, scale, depth)]
    raw: Path | None = None
    if cfg.tool == "py-spy":
        assert py_spy is not None and cfg.requested_hz is not None
        fd, name = tempfile.mkstemp(prefix="aether-bench-pyspy-", suffix=".txt")
        os.close(fd)
        raw = Path(name)
        # The default mode, as users run it: py-spy stops the process (ptrace) for each sample.
        cmd = [
            py_spy,
            "record",
            "--rate",
            str(round(cfg.requested_hz)),
            "--format",
            "raw",
            "-o",
            str(raw),
            "--",
            *cmd,
        ]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        run.ok, run.error = False, f"timed out after {RUN_TIMEOUT:.0f} s"
        return run
    finally:
        run.process_s = time.perf_counter() - t0
    try:
        result_lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
        if proc.returncode != 0 or not result_lines:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            run.ok, run.error = False, f"exit status {proc.returncode}: " + " | ".join(tail)
            return run
        result = json.loads(result_lines[-1][len(RESULT_PREFIX) :])
        run.workload_s = result["workload_s"]
        run.thread_cpu_s = result["thread_cpu_s"]
        run.parts_s = result["parts_s"]
        prof = result.get("profiler")
        if prof is not None:
            run.shares = prof.get("shares")
            run.samples = prof.get("samples")
            run.sampled_cpu_s = prof.get("sampled_cpu_s")
            run.dropped = prof.get("dropped")
            run.sampler = prof.get("sampler")
            run.helper_cpu_s = prof.get("helper_threads_cpu_s")
        if raw is not None:
            counts, total = parse_py_spy_raw(raw)
            run.samples = total
            run.sampled_cpu_s = run.thread_cpu_s
            run.shares = {p: (c / total if total else 0.0) for p, c in counts.items()}
            output = proc.stdout + proc.stderr
            lag = re.findall(r"([\d.]+)s behind in sampling", output)
            if lag:
                run.lag_s = max(map(float, lag))
            errors = re.search(r"Samples: (\d+) Errors: (\d+)", output)
            if errors and int(errors.group(2)):
                run.notes.append(f"py-spy reported {errors.group(2)} sampling errors")
    finally:
        if raw is not None:
            raw.unlink(missing_ok=True)
    return run


# -- summarising -----------------------------------------------------------------------------------


@dataclass
class Summary:
    config: str
    label: str
    runs: int
    failed: int
    workload_s: float = math.nan
    spread_pct: float = math.nan
    ratio: float = math.nan
    best_ratio: float = math.nan
    cpu_ratio: float = math.nan
    process_s: float = math.nan
    rate_hz: float | None = None
    rate_pct: float | None = None
    samples: float | None = None
    dropped_total: int | None = None
    attribution_pp: float | None = None
    attribution_pp_max: float | None = None
    attribution_own_pp: float | None = None
    cpu_us_per_sample: float | None = None
    wall_us_per_sample: float | None = None
    sampler: dict[str, float] | None = None
    notes: list[str] = field(default_factory=list)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def summarise(
    configs: list[Config],
    runs: list[Run],
    truth: dict[str, float],
    base_wall: float,
    base_best: float,
    base_cpu: float,
) -> list[Summary]:
    out = []
    for cfg in configs:
        mine = [r for r in runs if r.config == cfg.name]
        good = [r for r in mine if r.ok]
        s = Summary(cfg.name, cfg.label, len(mine), len(mine) - len(good))
        s.notes = [e for r in mine for e in ([r.error] if r.error else [])]
        s.notes += sorted({n for r in good for n in r.notes})
        lags = [r.lag_s for r in good if r.lag_s is not None]
        if lags:
            s.notes.append(
                f"py-spy reported falling behind its sampling schedule in {len(lags)} of {len(good)} runs"
                f" (by up to {max(lags):.2f} s)"
            )
        if not good:
            out.append(s)
            continue
        walls = [r.workload_s for r in good]
        s.workload_s = median(walls)
        s.spread_pct = (max(walls) - min(walls)) / s.workload_s * 100
        s.ratio = s.workload_s / base_wall
        s.best_ratio = min(walls) / base_best
        s.cpu_ratio = median([r.thread_cpu_s for r in good]) / base_cpu
        s.process_s = median([r.process_s for r in good])
        if cfg.tool != "baseline" and all(r.shares is not None for r in good):
            errors = [max(abs((r.shares or {})[p] - truth[p]) for p in PARTS) * 100 for r in good]
            s.attribution_pp = median(errors)
            s.attribution_pp_max = max(errors)
            own = [
                max(abs((r.shares or {})[p] - r.own_shares(cfg.clock)[p]) for p in PARTS) * 100 for r in good
            ]
            s.attribution_own_pp = median(own)
        if cfg.sampler and cfg.requested_hz and all(r.samples is not None and r.sampled_cpu_s for r in good):
            rates = [(r.samples or 0) / (r.sampled_cpu_s or math.inf) for r in good]
            s.rate_hz = median(rates)
            s.rate_pct = s.rate_hz / cfg.requested_hz * 100
            s.samples = median([float(r.samples or 0) for r in good])
            if s.samples:
                s.cpu_us_per_sample = (median([r.thread_cpu_s for r in good]) - base_cpu) / s.samples * 1e6
                s.wall_us_per_sample = (s.workload_s - base_wall) / s.samples * 1e6
        if all(r.dropped is not None for r in good):
            s.dropped_total = sum(r.dropped or 0 for r in good)
        if cfg.tool == "aether" and all(r.sampler for r in good):
            keys = (good[0].sampler or {}).keys()
            s.sampler = {k: median([float((r.sampler or {}).get(k, 0)) for r in good]) for k in keys}
            if all(r.helper_cpu_s is not None for r in good):
                s.sampler["helper_cpu_pct"] = median(
                    [(r.helper_cpu_s or 0) / r.workload_s * 100 for r in good]
                )
        out.append(s)
    return out


# -- printing ---------------------------------------------------------------------------------------


def verdict(value: float | None, limit: float | None, *, at_most: bool, unit: str) -> str:
    if limit is None:
        return ""
    sign = "<=" if at_most else ">="
    if value is None or math.isnan(value):
        return f"{sign}{limit:g}{unit} n/a"
    good = value <= limit if at_most else value >= limit
    return f"{sign}{limit:g}{unit} " + ("ok" if good else f"MISS by {abs(value - limit):.1f}{unit}")


def table(headers: list[str], rows: list[list[str]], right: set[int]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def fmt(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(headers), rule, *(fmt(r) for r in rows)])


def num(value: float | None, spec: str, missing: str = "n/a") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    return format(value, spec)


def wrap(text: str, indent: str = "  ", first: str | None = None) -> list[str]:
    return textwrap.wrap(
        text,
        width=WIDTH,
        initial_indent=indent if first is None else first,
        subsequent_indent=indent,
        break_on_hyphens=False,
    )


def report(
    facts: dict[str, Any],
    method: str,
    truth: dict[str, float],
    truth_spread: dict[str, float],
    busy: tuple[float, float, int, int],
    configs: list[Config],
    summaries: list[Summary],
    skipped: dict[str, str],
) -> str:
    by_name = {c.name: c for c in configs}
    load = "{:.2f} {:.2f} {:.2f} at start, {:.2f} {:.2f} {:.2f} at end".format(
        *facts["loadavg_start"], *facts["loadavg_end"]
    )
    lines = [
        "aether-native sampler overhead benchmark",
        *wrap(
            f"{facts['nproc']} CPUs ({facts['affinity']} usable), {facts['cpu']}; Linux {facts['kernel']},"
            f" HZ {facts['kernel_hz']}, clocksource {facts['clocksource']}",
            indent=" " * 9,
            first="machine: ",
        ),
        f"python:  {facts['python']}",
        "tools:   " + ", ".join(f"{k} {v}" for k, v in facts["versions"].items()),
        *wrap(
            f"1/5/15-min load average {load}; the baseline workload thread was on a CPU {busy[0] * 100:.0f}%"
            f" of its wall time (median; lowest {busy[1] * 100:.0f}%; 100% = it had a CPU to itself)",
            indent=" " * 9,
            first="load:    ",
        ),
        *wrap(method, indent=" " * 9, first="method:  "),
        *wrap(
            "baseline shares (median over the baseline runs, timed with perf_counter): "
            + ", ".join(f"{p} {truth[p] * 100:.1f}% (range {truth_spread[p]:.1f} pp)" for p in PARTS),
            indent=" " * 9,
            first="truth:   ",
        ),
        "",
    ]
    rows = []
    for s in summaries:
        cfg = by_name[s.config]
        overhead = (s.ratio - 1) * 100
        target = None if cfg.overhead_target is None else cfg.overhead_target * 100
        rows.append(
            [
                cfg.label,
                f"{s.runs - s.failed}/{s.runs}",
                num(s.workload_s, ".3f"),
                num(s.spread_pct, ".1f"),
                num(s.ratio, ".3f"),
                "" if cfg.tool == "baseline" else num(overhead, "+.1f"),
                verdict(None if math.isnan(overhead) else overhead, target, at_most=True, unit="%"),
                num(s.best_ratio, ".3f"),
                num(s.cpu_ratio, ".3f"),
                num(s.process_s, ".2f"),
            ]
        )
    headers = ["configuration", "runs", "wall s", "range%", "ratio", "overhead%", "target", "best ratio"]
    headers += ["cpu ratio", "proc s"]
    lines.append("Overhead: workload wall time as timed by the workload itself, against the baseline median")
    lines.append(table(headers, rows, right={1, 2, 3, 4, 5, 7, 8, 9}))
    lines += wrap(
        "wall s: median over the runs; range%: (max - min) / median; best ratio: fastest run against the"
        " fastest baseline run (other load only ever adds time, so this is the figure least disturbed by"
        " a busy machine); cpu ratio: median CPU time of the"
        " workload thread against the baseline's (a pausing out-of-process sampler adds wall time, not"
        " thread CPU); proc s: median wall time of the whole process as this script saw it (interpreter"
        " start, imports, profiler start/stop and output)."
    )
    lines.append("")
    rows = []
    for s in summaries:
        cfg = by_name[s.config]
        if cfg.tool == "baseline":
            continue
        rate_target = None if cfg.rate_target is None else cfg.rate_target * 100
        rows.append(
            [
                cfg.label,
                num(cfg.requested_hz, ".0f", ""),
                num(s.rate_hz, ".0f", ""),
                num(s.rate_pct, ".1f", ""),
                verdict(s.rate_pct, rate_target, at_most=False, unit="%"),
                num(s.samples, ".0f", ""),
                "" if s.dropped_total is None else str(s.dropped_total),
                num(s.attribution_pp, ".2f"),
                num(s.attribution_pp_max, ".2f"),
                verdict(s.attribution_pp, cfg.attribution_target, at_most=True, unit=" pp"),
                num(s.attribution_own_pp, ".2f"),
                num(s.cpu_us_per_sample, ".1f", ""),
                num(s.wall_us_per_sample, ".1f", ""),
            ]
        )
    headers = ["configuration", "req Hz", "rate Hz", "rate %", "target", "samples", "dropped", "attr pp"]
    headers += ["worst pp", "target", "vs own run", "cpu us/s", "wall us/s"]
    lines.append("Accuracy: sample rate and attribution")
    lines.append(table(headers, rows, right={1, 2, 3, 5, 6, 7, 8, 10, 11, 12}))
    lines += wrap(
        "rate Hz: samples of the workload thread per second of its CPU time (median over the runs),"
        " rate %: against the requested rate; samples: median per run; dropped: total over all runs;"
        " attr pp: median over the runs of max over the 3 functions of |profiled share - true share| in"
        " percentage points, the true shares being the baseline's; worst pp: the largest of any run;"
        " vs own run: the same error against the shares the profiled run timed itself, by thread CPU time"
        " for aether cpu mode and yappi, by perf_counter for the others (free of run-to-run drift, but"
        " distorted by a profiler that slows some functions more than others); cpu/wall us/s:"
        " extra thread CPU / wall time per sample against the baseline medians, in microseconds. Shares"
        " are self time for the samplers (C calls charged to the calling Python function; pyinstrument's"
        " <built-in> frames folded into their caller) and each function's total time over"
        f" {ENTRY}'s for yappi and cProfile, which measure rather than sample."
    )
    aether = [s for s in summaries if s.sampler]
    if aether:
        keys = ["ticks", "late_ticks", "signals_sent", "signals_failed", "stale_signals", "no_thread_state"]
        keys += ["lost_weight_ns", "records_dropped", "helper_cpu_pct"]
        rows = [
            [
                by_name[s.config].label,
                *(num((s.sampler or {}).get(k), ".1f" if k.endswith("_pct") else ".0f", "-") for k in keys),
            ]
            for s in aether
        ]
        lines.append("")
        lines.append("aether sampler counters (median per run, whole sampling session)")
        lines.append(table(["configuration", *keys], rows, right=set(range(1, len(keys) + 1))))
        lines += wrap(
            "helper_cpu_pct: CPU time of aether's own threads (the sampler thread that ticks and signals,"
            " and the drain thread that resolves samples holding the GIL) as % of the workload's wall time;"
            " on a 2-core machine it competes with everything else for the second core."
        )
    notes = [(by_name[s.config].label, n) for s in summaries for n in s.notes]
    if busy[2]:
        notes.insert(
            0,
            (
                "WARNING",
                f"in {busy[2]} of {busy[3]} baseline runs the workload thread was on a CPU less than"
                f" {BUSY_WARNING * 100:.0f}% of its wall time (lowest {busy[1] * 100:.0f}%): other processes"
                " competed for the CPUs, which inflates and scatters the wall times; rates per CPU-second"
                " read high in such runs",
            ),
        )
    if notes or skipped:
        lines.append("")
        lines.append("Notes")
        for label, note in notes:
            lines += wrap(f"{label}: {note}", indent="    ", first="  ")
        for tool, reason in skipped.items():
            lines += wrap(f"{tool}: skipped ({reason})", indent="    ", first="  ")
    return "\n".join(lines)


# -- main -------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 5, or 3 with --quick)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROUNDS} rounds of a shorter workload")
    parser.add_argument(
        "--scale", type=float, default=None, help="workload length factor (default 1, 0.4 quick)"
    )
    parser.add_argument(
        "--depth", type=int, default=DEFAULT_DEPTH, help="frames above the workload functions"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the per-round shuffles")
    parser.add_argument(
        "--only", default=None, help="comma-separated configuration names (baseline always runs)"
    )
    parser.add_argument("--no-peers", action="store_true", help="only the baseline and aether")
    parser.add_argument("--json", type=Path, default=None, help="also write every run and the summary here")
    parser.add_argument("--list", action="store_true", help="list the configurations and exit")
    args = parser.parse_args(argv)
    rounds = args.rounds if args.rounds is not None else (QUICK_ROUNDS if args.quick else 5)
    scale = args.scale if args.scale is not None else (QUICK_SCALE if args.quick else 1.0)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    if rounds < 1:
        parser.error("--rounds must be at least 1")

    configs = all_configs()
    if args.list:
        for c in configs:
            print(f"{c.name:20} {c.label}")
        return 0
    env = child_env()
    status = available_tools(env)
    skipped = {tool: reason for tool, reason in status.items() if reason}
    configs = [c for c in configs if not status[c.tool]]
    if args.no_peers:
        configs = [c for c in configs if c.tool in ("baseline", "aether")]
    if args.only:
        wanted = {n.strip() for n in args.only.split(",") if n.strip()}
        unknown = wanted - {c.name for c in all_configs()}
        if unknown:
            parser.error(f"unknown configuration(s): {', '.join(sorted(unknown))} (see --list)")
        configs = [c for c in configs if c.name in wanted or c.tool == "baseline"]
    py_spy = find_py_spy()
    facts = machine_facts(status)

    rng = random.Random(seed)
    total = rounds * len(configs)
    print(
        f"running {len(configs)} configurations x {rounds} rounds ({total} processes),"
        f" workload scale {scale:g}, seed {seed}",
        file=sys.stderr,
    )
    runs: list[Run] = []
    started = time.perf_counter()
    for rnd in range(1, rounds + 1):
        order = configs[:]
        rng.shuffle(order)
        for cfg in order:
            run = run_one(cfg, rnd, scale, args.depth, env, py_spy)
            runs.append(run)
            detail = (
                f"wall {run.workload_s:.3f} s  cpu {run.thread_cpu_s:.3f} s  process {run.process_s:.2f} s"
                if run.ok
                else f"FAILED: {run.error}"
            )
            print(
                f"[{len(runs):3}/{total}] round {rnd}/{rounds}  {cfg.name:20} {detail}"
                f"  ({time.perf_counter() - started:.0f} s elapsed)",
                file=sys.stderr,
            )
    facts["loadavg_end"] = os.getloadavg()

    base = [r for r in runs if r.config == "baseline" and r.ok]
    if not base:
        print("error: every baseline run failed; no ratios to report", file=sys.stderr)
        return 1
    truth = {p: median([r.true_shares[p] for r in base]) for p in PARTS}
    truth_spread = {
        p: (max(r.true_shares[p] for r in base) - min(r.true_shares[p] for r in base)) * 100 for p in PARTS
    }
    base_wall = median([r.workload_s for r in base])
    base_cpu = median([r.thread_cpu_s for r in base])
    base_best = min(r.workload_s for r in base)
    summaries = summarise(configs, runs, truth, base_wall, base_best, base_cpu)
    method = (
        f"{len(configs)} configurations x {rounds} rounds, interleaved (each round runs every configuration"
        f" once, each in a fresh process, in a new random order; seed {seed}); workload of"
        f" {max(1, round(CHUNKS * scale))} chunks at stack depth {args.depth}; medians over rounds;"
        " py-spy in its default (pausing) mode, as users run it."
    )
    on_cpu = [r.thread_cpu_s / r.workload_s for r in base]
    busy = (median(on_cpu), min(on_cpu), sum(x < BUSY_WARNING for x in on_cpu), len(on_cpu))
    print(report(facts, method, truth, truth_spread, busy, configs, summaries, skipped))
    if args.json is not None:
        payload = {
            "machine": facts,
            "method": method,
            "seed": seed,
            "rounds": rounds,
            "scale": scale,
            "depth": args.depth,
            "true_shares": truth,
            "baseline_median_s": base_wall,
            "summary": [asdict(s) for s in summaries],
            "runs": [asdict(r) for r in runs],
            "skipped": skipped,
        }
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
