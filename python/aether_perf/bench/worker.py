"""A benchmark worker process: ``python worker.py SPEC.json RESULT.json``.

The runner starts several of these per run, each a fresh interpreter with its own
``PYTHONHASHSEED`` (address-space layout, hash seed and environment shift a process's speed; only
many processes average that out). A worker imports the benchmark files, then, per benchmark in a
shuffled order: calibrates the loops (``mode: calibrate``) or takes them from the spec, runs the
warm-up values, then the measured values, recording each value's noise covariates and re-running
a value whose run-queue wait says a neighbour took the CPU.

It is run by path and uses the standard library only, loading its two helpers (``calibrate.py``,
``noise.py``) from its own directory under private names. That way ``--compare-ref`` can run it
against an older checkout whose ``aether_perf`` is on ``sys.path``: the benchmark files there import
*their* ``aether_perf.bench`` and measure *their* code, while the harness stays this one.
Results go to a file, never stdout, so benchmarks may print.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import json
import random
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any


def _sibling(name: str) -> ModuleType:
    path = Path(__file__).resolve().with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"_aether_bench_worker_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _counter(hook: str | None) -> Any:
    """The optional counter (``"module:factory"``); the factory returns an object with
    ``start()`` and ``stop() -> float | None`` (e.g. instructions retired), or None when this
    machine cannot count."""
    if not hook:
        return None
    module_name, _, attribute = hook.partition(":")
    factory = getattr(importlib.import_module(module_name), attribute)
    return factory()


def _measure(call: Any, loops: int, spec: dict[str, Any], noise: Any, counter: Any) -> dict[str, Any]:
    values: list[float] = []
    running: list[float] = []
    waits: list[int] = []
    switches: list[int] = []
    dirty: list[bool] = []
    counts: list[float | None] = []
    reruns = 0
    limit = float(spec["contamination"])
    budget = int(spec["max_reruns"]) * int(spec["values"])
    iterations = range(loops)

    def body() -> None:
        for _ in iterations:
            call()

    for _ in range(int(spec["warmups"])):
        body()
    index = 0
    while index < int(spec["values"]):
        if counter is not None:
            try:
                counter.start()
            except Exception:  # the counter is a second opinion: without it, time alone decides
                counter = None
        duration, wait, nivcsw = noise.timed(body)
        count = None
        if counter is not None:
            try:
                count = counter.stop()
            except Exception:
                counter = None
        bad = noise.contaminated(wait, duration, limit)
        if bad and reruns < budget:
            reruns += 1  # a neighbour took the CPU during this value: measure it again
            continue
        values.append(duration / loops)
        running.append(noise.running_seconds(duration, wait) / loops)
        waits.append(wait)
        switches.append(nivcsw)
        dirty.append(bad)
        counts.append(None if count is None else float(count) / loops)
        index += 1
    return {
        "values": values,
        "running": running,
        "run_delay_ns": waits,
        "nivcsw": switches,
        "contaminated": dirty,
        "reruns": reruns,
        "instructions": counts if any(c is not None for c in counts) else None,
    }


def run(spec: dict[str, Any]) -> dict[str, Any]:
    calibrate = _sibling("calibrate")
    noise = _sibling("noise")
    for entry in reversed(spec.get("sys_path", [])):
        sys.path.insert(0, entry)
    registry = importlib.import_module("aether_perf.bench.registry")
    benches = registry.load_files([Path(f) for f in spec["files"]])
    listing = [{"id": b.id, "name": b.name, "group": b.group, "file": b.file} for b in benches]
    out: dict[str, Any] = {"benchmarks": listing, "loops": {}, "results": {}, "errors": {}}
    if spec["mode"] == "list":
        return out
    wanted = spec.get("ids")
    selected = [b for b in benches if wanted is None or b.id in wanted]
    random.Random(spec.get("order_seed", 0)).shuffle(selected)
    resolution = calibrate.timer_resolution()
    out["resolution"] = resolution
    counter = _counter(spec.get("counter_hook"))
    for bench in selected:
        try:
            if bench.setup is not None:
                argument = bench.setup()
                func = bench.func

                def call(func: Any = func, argument: Any = argument) -> object:
                    return func(argument)
            else:
                call = bench.func
            gc.collect()
            if spec["mode"] == "calibrate":
                loops = calibrate.calibrate(call, float(spec["target"]), resolution, noise.run_delay_ns)
                out["loops"][bench.id] = loops
                # Check the calibration: one value at the chosen loops (reported, not used).
                out["results"][bench.id] = {"check": calibrate.time_loops(call, loops)}
                continue
            loops = int(spec["loops"][bench.id])
            out["loops"][bench.id] = loops
            out["results"][bench.id] = _measure(call, loops, spec, noise, counter)
        except Exception as exc:  # a failing benchmark is reported by name, the others still run
            lines = traceback.format_exception_only(type(exc), exc)
            out["errors"][bench.id] = lines[-1].strip()
    return out


def main(argv: list[str]) -> int:
    here = str(Path(__file__).resolve().parent)
    if sys.path and sys.path[0] and str(Path(sys.path[0]).resolve()) == here:
        del sys.path[0]  # this file's directory: its siblings must not shadow user modules
    spec_path, result_path = argv[1], argv[2]
    with open(spec_path, encoding="utf-8") as handle:
        spec = json.load(handle)
    try:
        result = run(spec)
    except Exception as exc:  # importing the benchmark files failed: say why, in the result
        lines = traceback.format_exception_only(type(exc), exc)
        result = {"fatal": lines[-1].strip(), "traceback": traceback.format_exc()}
    with open(result_path, "w", encoding="utf-8") as handle:
        json.dump(result, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
