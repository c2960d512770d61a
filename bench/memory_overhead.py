"""Memory-tracking overhead benchmark: aether-native's AllocationTracker against no tracker and peers.

    python bench/memory_overhead.py [--rounds 5] [--quick] [--json out.json] [--only NAMES]

Runs one allocation-heavy workload (churn 2,000,000 small objects, allocate and free 2,000 buffers
of 1 MiB, leak 10,000 objects of 1 KiB from a known function, ``leak_kib``) in a fresh process per
measurement: with no tracker, under ``AllocationTracker(mode="exact")`` and
``AllocationTracker(mode="sampled", sample_rate="512KiB")``, both again with ``native=True`` (GOT
patching of the loaded extensions; this workload's allocations all go through PyMem, so it prices
the patching and the wider hooks), under ``tracemalloc.start(1)`` and, when memray is installed,
under ``python -m memray run`` plain, with ``--trace-python-allocators`` and with ``--native``.
Configurations are interleaved: every round runs each one once, in
a new random order. Prints, per configuration, the median workload wall time (timed by the workload
itself, tracker start/stop outside it), its ratio to the untracked median beside the target, the
size of the capture file (aether: ``HeapSnapshot.save`` of the end snapshot; tracemalloc:
``Snapshot.dump``; memray: its ``.bin``) and the leak attributed to ``leak_kib``'s allocating line
where that is cheap to read (aether: ``hot_spots(key="line")``; tracemalloc: ``statistics("traceback")``
filtered to that line). Nothing is asserted. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from sampler_overhead import child_env, kernel_hz, median, num, table, wrap  # noqa: E402

RESULT_PREFIX = "AETHER_MEM_RESULT "
RUN_TIMEOUT = 300.0
QUICK_SCALE = 0.4
QUICK_ROUNDS = 3
CHURN = 2_000_000
BUFFERS = 2_000
BUFFER_SIZE = 1 << 20
LEAKS = 10_000
LEAK_SIZE = 1024

# The measured script, written to a temporary file (memray runs a script by path). The leak is
# built as ``b"x" * size`` with ``size`` a variable, so it is a fresh allocation, not a constant.
WORKLOAD_SOURCE = '''\
"""Memory workload of bench/memory_overhead.py (generated; edit it there)."""
import argparse, json, os, sys, time

PREFIX = %(prefix)r
KEPT = []


def churn(n):
    for i in range(n):
        obj = [i]  # a small list: the object and its item array
        del obj


def buffers(count, size):
    for _ in range(count):
        buf = bytearray(size)
        buf[-1] = 1
        del buf


def leak_kib(count, size):
    kept = []
    for _ in range(count):
        kept.append(b"x" * size)  # LEAK-SITE
    return kept


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tracker", default="none")
    p.add_argument("--churn", type=int)
    p.add_argument("--buffers", type=int)
    p.add_argument("--buffer-size", type=int)
    p.add_argument("--leaks", type=int)
    p.add_argument("--leak-size", type=int)
    p.add_argument("--capture", default=None)
    a = p.parse_args()
    leak_line = next(i for i, line in enumerate(open(__file__), 1) if "# LEAK" + "-SITE" in line)
    out = {"tracker": a.tracker}
    tracker = None
    if a.tracker.split("-")[0] in ("exact", "sampled", "native"):
        from aether_native import AllocationTracker

        # "-noseries": without the memory-over-time thread (on by default, every 10 ms).
        series = None if a.tracker.endswith("-noseries") else "10ms"
        mode = "sampled" if "sampled" in a.tracker else "exact"
        native = a.tracker.startswith("native")
        tracker = AllocationTracker(mode=mode, sample_rate="512KiB", series_interval=series, native=native)
        tracker.start()
    elif a.tracker == "tracemalloc":
        import tracemalloc

        tracemalloc.start(1)
    t0 = time.perf_counter()
    c0 = time.thread_time()
    churn(a.churn)
    buffers(a.buffers, a.buffer_size)
    KEPT.append(leak_kib(a.leaks, a.leak_size))
    out["workload_s"] = time.perf_counter() - t0
    out["thread_cpu_s"] = time.thread_time() - c0
    t1 = time.perf_counter()
    if tracker is not None:
        tracker.stop()
        snap = tracker.snapshot()
        snap.save(a.capture)
        out["capture_bytes"] = os.path.getsize(a.capture)
        leak = [
            s for s in snap.hot_spots(None, key="line")
            if s.line == leak_line and os.path.samefile(s.file, __file__)
        ]
        out["leak_bytes"] = sum(s.bytes for s in leak)
        out["leak_blocks"] = sum(s.count for s in leak)
        out["tracked_bytes"] = snap.total_bytes
        stats = tracker.statistics()
        out["allocations"] = stats["allocations"]
        out["sampled_allocations"] = stats.get("sampled_allocations")
    elif a.tracker == "tracemalloc":
        snap = tracemalloc.take_snapshot()
        tracemalloc.stop()
        snap.dump(a.capture)
        out["capture_bytes"] = os.path.getsize(a.capture)
        leak = [
            s for s in snap.statistics("traceback")
            if s.traceback[0].lineno == leak_line and os.path.samefile(s.traceback[0].filename, __file__)
        ]
        out["leak_bytes"] = sum(s.size for s in leak)
        out["leak_blocks"] = sum(s.count for s in leak)
        out["tracked_bytes"] = sum(s.size for s in snap.statistics("filename"))
    out["capture_s"] = time.perf_counter() - t1
    print(PREFIX + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
'''


# -- configurations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    name: str
    tool: str  # "baseline", "aether", "tracemalloc", "memray"
    label: str
    tracker: str = "none"  # the workload's --tracker
    ratio_target: float | None = None  # at most this times the untracked median
    memray_python: bool = False  # memray --trace-python-allocators
    memray_native: bool = False  # memray --native


def all_configs() -> list[Config]:
    return [
        Config("baseline", "baseline", "no tracker"),
        Config("aether-exact", "aether", "aether exact", "exact", 2.5),
        Config("aether-sampled", "aether", "aether sampled 512KiB", "sampled", 1.15),
        Config("aether-exact-noseries", "aether", "aether exact, no memory series", "exact-noseries"),
        Config("aether-sampled-noseries", "aether", "aether sampled, no memory series", "sampled-noseries"),
        Config("aether-native", "aether", "aether exact --native", "native"),
        Config("aether-native-sampled", "aether", "aether sampled --native", "native-sampled"),
        Config("tracemalloc", "tracemalloc", "tracemalloc (1 frame)", "tracemalloc"),
        Config("memray", "memray", "memray run"),
        Config("memray-pyalloc", "memray", "memray --trace-python-allocators", memray_python=True),
        Config("memray-native", "memray", "memray --native", memray_native=True),
    ]


def available_tools(env: dict[str, str]) -> dict[str, str]:
    """tool -> "" when usable, else the reason it is skipped."""
    probe = (
        "import importlib, json\n"
        "out = {}\n"
        "for mod in ('aether_native', 'memray'):\n"
        "    try:\n"
        "        importlib.import_module(mod); out[mod] = ''\n"
        "    except Exception as e:\n"
        "        out[mod] = f'{type(e).__name__}: {e}'\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    found: dict[str, str] = json.loads(proc.stdout) if proc.returncode == 0 else {}
    return {
        "baseline": "",
        "tracemalloc": "",
        "aether": found.get("aether_native", "import probe failed"),
        "memray": found.get("memray", "import probe failed"),
    }


def machine_facts(tools: dict[str, str]) -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / (1 << 20):.1f} GiB RAM"
                break
    except (OSError, ValueError):
        pass
    versions: dict[str, str] = {}
    for dist in ("aether-native", "memray"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = "in-place build" if dist == "aether-native" and not tools["aether"] else "-"
    return {
        "nproc": os.cpu_count(),
        "affinity": len(os.sched_getaffinity(0)),
        "cpu": model,
        "memory": mem,
        "kernel": platform.release(),
        "kernel_hz": kernel_hz(),
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
    capture_s: float | None = None
    capture_bytes: int | None = None
    leak_bytes: int | None = None
    leak_blocks: float | None = None
    tracked_bytes: int | None = None


def workload_args(cfg: Config, script: Path, scale: float, capture: Path) -> list[str]:
    args = [str(script), "--tracker", cfg.tracker, "--capture", str(capture)]
    args += ["--churn", str(max(1, round(CHURN * scale))), "--buffers", str(max(1, round(BUFFERS * scale)))]
    args += ["--buffer-size", str(BUFFER_SIZE), "--leaks", str(LEAKS), "--leak-size", str(LEAK_SIZE)]
    return args


def run_one(cfg: Config, rnd: int, script: Path, scale: float, env: dict[str, str], tmp: Path) -> Run:
    run = Run(cfg.name, rnd)
    capture = tmp / f"{cfg.name}-{rnd}.capture"
    cmd = [sys.executable, *workload_args(cfg, script, scale, capture)]
    if cfg.tool == "memray":
        capture = tmp / f"{cfg.name}-{rnd}.bin"
        flags = ["--trace-python-allocators"] if cfg.memray_python else []
        flags += ["--native"] if cfg.memray_native else []
        cmd = [sys.executable, "-m", "memray", "run", "-q", "-o", str(capture), "--force", *flags, *cmd[1:]]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        run.ok, run.error = False, f"timed out after {RUN_TIMEOUT:.0f} s"
        return run
    finally:
        run.process_s = time.perf_counter() - t0
    try:
        lines = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
        if proc.returncode != 0 or not lines:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            run.ok, run.error = False, f"exit status {proc.returncode}: " + " | ".join(tail)
            return run
        result = json.loads(lines[-1][len(RESULT_PREFIX) :])
        run.workload_s = result["workload_s"]
        run.thread_cpu_s = result["thread_cpu_s"]
        if cfg.tool in ("aether", "tracemalloc"):
            run.capture_s = result.get("capture_s")
            run.capture_bytes = result.get("capture_bytes")
            run.leak_bytes = result.get("leak_bytes")
            run.leak_blocks = result.get("leak_blocks")
            run.tracked_bytes = result.get("tracked_bytes")
        elif capture.exists():
            run.capture_bytes = capture.stat().st_size
    finally:
        capture.unlink(missing_ok=True)
    return run


# -- summarising and printing ----------------------------------------------------------------------


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
    capture_s: float | None = None
    capture_bytes: float | None = None
    leak_bytes: float | None = None
    leak_blocks: float | None = None
    notes: list[str] = field(default_factory=list)


def summarise(configs: list[Config], runs: list[Run], base: list[Run]) -> list[Summary]:
    base_wall = median([r.workload_s for r in base])
    base_best = min(r.workload_s for r in base)
    base_cpu = median([r.thread_cpu_s for r in base])
    out = []
    for cfg in configs:
        mine = [r for r in runs if r.config == cfg.name]
        good = [r for r in mine if r.ok]
        s = Summary(cfg.name, cfg.label, len(mine), len(mine) - len(good))
        s.notes = [r.error for r in mine if r.error]
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

        def med(attr: str, rows: list[Run] = good) -> float | None:
            values = [getattr(r, attr) for r in rows if getattr(r, attr) is not None]
            return median([float(v) for v in values]) if values else None

        s.capture_s = med("capture_s")
        s.capture_bytes = med("capture_bytes")
        s.leak_bytes = med("leak_bytes")
        s.leak_blocks = med("leak_blocks")
        out.append(s)
    return out


def size_text(nbytes: float | None) -> str:
    if nbytes is None:
        return "-"
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes:.0f} B"


def target_text(ratio: float, limit: float | None) -> str:
    if limit is None:
        return ""
    if math.isnan(ratio):
        return f"<={limit:g}x n/a"
    return f"<={limit:g}x " + ("ok" if ratio <= limit else f"MISS by {ratio - limit:.2f}x")


def report(
    facts: dict[str, Any],
    method: str,
    configs: list[Config],
    summaries: list[Summary],
    skipped: dict[str, str],
    leak_truth: tuple[int, int],
) -> str:
    by_name = {c.name: c for c in configs}
    load = "{:.2f} {:.2f} {:.2f} at start, {:.2f} {:.2f} {:.2f} at end".format(
        *facts["loadavg_start"], *facts["loadavg_end"]
    )
    lines = [
        "aether-native memory-tracking overhead benchmark",
        *wrap(
            f"{facts['nproc']} CPUs ({facts['affinity']} usable), {facts['cpu']}, {facts['memory']};"
            f" Linux {facts['kernel']}, HZ {facts['kernel_hz']}",
            indent=" " * 9,
            first="machine: ",
        ),
        f"python:  {facts['python']}",
        "tools:   " + ", ".join(f"{k} {v}" for k, v in facts["versions"].items()) + ", tracemalloc (stdlib)",
        *wrap(f"1/5/15-min load average {load}", indent=" " * 9, first="load:    "),
        *wrap(method, indent=" " * 9, first="method:  "),
        "",
    ]
    rows = []
    for s in summaries:
        cfg = by_name[s.config]
        leak = "-"
        if s.leak_bytes is not None:
            leak = f"{size_text(s.leak_bytes)} / {num(s.leak_blocks, '.0f')}"
        rows.append(
            [
                cfg.label,
                f"{s.runs - s.failed}/{s.runs}",
                num(s.workload_s, ".3f"),
                num(s.spread_pct, ".1f"),
                num(s.ratio, ".2f"),
                target_text(s.ratio, cfg.ratio_target),
                num(s.best_ratio, ".2f"),
                num(s.cpu_ratio, ".2f"),
                size_text(s.capture_bytes),
                num(s.capture_s, ".2f", "-"),
                leak,
                num(s.process_s, ".2f"),
            ]
        )
    headers = ["configuration", "runs", "wall s", "range%", "ratio", "target", "best ratio", "cpu ratio"]
    headers += ["capture file", "capture s", "leak in leak_kib", "proc s"]
    lines.append("Overhead: workload wall time as timed by the workload itself, against the untracked median")
    lines.append(table(headers, rows, right={1, 2, 3, 4, 6, 7, 8, 9, 11}))
    lines += wrap(
        "wall s: median over the runs; range%: (max - min) / median; best ratio: fastest run against the"
        " fastest untracked run; cpu ratio: median CPU time of the workload thread against the untracked"
        " one's; capture file: median size of the end snapshot as saved (aether: HeapSnapshot.save;"
        " tracemalloc: Snapshot.dump) or of memray's .bin (written during the run, so its cost is in the"
        " wall time); capture s: snapshot + save after the timed region (not in the ratio); leak in"
        f" leak_kib: live bytes / blocks attributed to the leaking line (true: {size_text(leak_truth[0])}"
        f" of payload in {leak_truth[1]} blocks, each block {LEAK_SIZE} bytes + the bytes object header;"
        " sampled mode's figures are unbiased estimates); '-' where not read (memray: its reader is not"
        " cheap); proc s: median wall time of the whole process (interpreter start, imports, tracker"
        " start/stop, snapshot, save)."
    )
    notes = [(by_name[s.config].label, n) for s in summaries for n in s.notes]
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
        "--scale", type=float, default=None, help="churn and buffer count factor (default 1, 0.4 quick)"
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
    with tempfile.TemporaryDirectory(prefix="aether-bench-mem-") as tmpdir:
        tmp = Path(tmpdir)
        script = tmp / "workload_memory.py"
        script.write_text(WORKLOAD_SOURCE % {"prefix": RESULT_PREFIX})
        for rnd in range(1, rounds + 1):
            order = configs[:]
            rng.shuffle(order)
            for cfg in order:
                run = run_one(cfg, rnd, script, scale, env, tmp)
                runs.append(run)
                detail = (
                    f"wall {run.workload_s:.3f} s  cpu {run.thread_cpu_s:.3f} s"
                    f"  process {run.process_s:.2f} s"
                    if run.ok
                    else f"FAILED: {run.error}"
                )
                print(
                    f"[{len(runs):3}/{total}] round {rnd}/{rounds}  {cfg.name:16} {detail}"
                    f"  ({time.perf_counter() - started:.0f} s elapsed)",
                    file=sys.stderr,
                )
    facts["loadavg_end"] = os.getloadavg()

    base = [r for r in runs if r.config == "baseline" and r.ok]
    if not base:
        print("error: every untracked run failed; no ratios to report", file=sys.stderr)
        return 1
    summaries = summarise(configs, runs, base)
    churn, buffers = max(1, round(CHURN * scale)), max(1, round(BUFFERS * scale))
    method = (
        f"{len(configs)} configurations x {rounds} rounds, interleaved (each round runs every configuration"
        f" once, each in a fresh process, in a new random order; seed {seed}); workload: churn {churn:,}"
        f" small lists, allocate/touch/free {buffers:,} x {size_text(BUFFER_SIZE)} bytearrays, leak"
        f" {LEAKS:,} x {size_text(LEAK_SIZE)} bytes objects (b'x' * n) from leak_kib; medians over rounds;"
        " trackers start before and stop after the timed region; memray runs the same script under"
        " 'python -m memray run', timed by the script."
    )
    print(report(facts, method, configs, summaries, skipped, (LEAKS * LEAK_SIZE, LEAKS)))
    if args.json is not None:
        payload = {
            "machine": facts,
            "method": method,
            "seed": seed,
            "rounds": rounds,
            "scale": scale,
            "baseline_median_s": median([r.workload_s for r in base]),
            "summary": [asdict(s) for s in summaries],
            "runs": [asdict(r) for r in runs],
            "skipped": skipped,
        }
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
