"""``engine="locust"`` / ``--engine locust``: the same scenario, run by locust, back into our result.

Locust is gevent-based and monkey-patches the standard library when imported, which would break
asyncio in the calling process; so :func:`run_locust` runs ``python -m aether_perf.load.locust_engine``
in a child process, reads its progress lines, and loads the result it writes (JSON, the same format
as ``--json``). The child builds a locust ``FastHttpUser`` class from the scenario
(:func:`user_class`) and drives it with locust's LocalRunner, stage by stage.

A transaction is a coroutine function that awaits the client; under locust, the client is an adapter
over locust's own HTTP client whose methods complete without suspending, so the coroutine is run by
sending it ``None`` once. A transaction that awaits anything else (``asyncio.sleep``) is reported as
an error of its own kind. Each transaction is timed into the same histograms as the native engine;
locust's own per-request statistics are recorded by locust as usual.

Locust has a closed model only: an open-model scenario runs ``pool_size`` locust users paced to the
target rate (like locust's ``constant_throughput``), with latency measured from the actual start,
so corrected equals raw and a stall is *not* corrected for (coordinated omission; locust #646).

To spread a scenario over many machines, write a locustfile::

    from aether_perf.load.locust_engine import user_class
    from my_scenario import scenario
    ShopUser = user_class(scenario)

and run locust's own ``--master`` / ``--worker`` on it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import TYPE_CHECKING, Any

from aether_perf.errors import InvalidArgument, RunFailed

if TYPE_CHECKING:
    from aether_perf.load.result import LoadTestResult
    from aether_perf.load.runner import ProgressCallback, Recorder
    from aether_perf.load.scenario import Scenario

__all__ = ["run_locust", "user_class"]

_FIELDS = (
    "users",
    "arrival_rate",
    "ramp_up",
    "duration",
    "think_time",
    "max_users",
    "timeout",
    "ramp_stages",
)


def run_locust(scenario: Scenario, *, host: str, progress: ProgressCallback | None = None) -> LoadTestResult:
    """Run ``scenario`` under locust in a child process and return the result."""
    import importlib.util

    from aether_perf.load.result import LoadTestResult
    from aether_perf.load.runner import Progress

    if importlib.util.find_spec("locust") is None:
        raise InvalidArgument("the locust engine needs locust: pip install 'aether-native[load]'")
    if not scenario.source or not os.path.isfile(scenario.source):
        raise InvalidArgument(
            f"scenario {scenario.name!r}: the locust engine needs the file that defines it (source=...)"
        )
    settings = {f: getattr(scenario, f) for f in _FIELDS}
    settings["think_time"] = list(scenario.think_range)
    with tempfile.TemporaryDirectory(prefix="aether-locust-") as folder:
        out = os.path.join(folder, "result.json")
        command = [
            sys.executable,
            "-m",
            "aether_perf.load.locust_engine",
            scenario.source,
            "--name",
            scenario.name,
            "--host",
            host,
            "--settings",
            json.dumps(settings),
            "--out",
            out,
        ]
        env = dict(os.environ)
        here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        assert proc.stdout is not None and proc.stderr is not None
        for line in proc.stdout:
            if line.startswith("PROGRESS ") and progress is not None:
                progress(Progress(**json.loads(line[len("PROGRESS ") :])))
        errors = proc.stderr.read()
        status = proc.wait()
        if status != 0 or not os.path.exists(out):
            last = [line for line in errors.strip().splitlines() if line.strip()]
            if status == 2 and last:
                raise InvalidArgument(last[-1])
            raise RunFailed(
                f"the locust engine failed (exit status {status}): {last[-1] if last else 'no output'}"
            )
        with open(out, encoding="utf-8") as f:
            return LoadTestResult.from_json(f.read())


class _Adapter:
    """Our client's interface (``await client.get(...)``) over a locust user's HTTP session."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.failure: str | None = None

    async def get(self, path: str, *, headers: Any = None) -> Any:
        return await self.request("GET", path, headers=headers)

    async def post(self, path: str, data: Any = None, *, json: Any = None, headers: Any = None) -> Any:
        return await self.request("POST", path, data=data, json=json, headers=headers)

    async def put(self, path: str, data: Any = None, *, json: Any = None) -> Any:
        return await self.request("PUT", path, data=data, json=json)

    async def delete(self, path: str) -> Any:
        return await self.request("DELETE", path)

    async def request(
        self, method: str, path: str, *, data: Any = None, json: Any = None, headers: Any = None
    ) -> Any:
        from aether_perf.load.client import Response

        reply = self.session.request(method, path, data=data, json=json, headers=headers)
        error = getattr(reply, "error", None)
        if not reply.status_code and isinstance(error, BaseException):
            raise error
        status = int(reply.status_code or 0)
        if status >= 400:
            self.failure = f"HTTP {status}"
        headers_out = {str(k).lower(): str(v) for k, v in (reply.headers or {}).items()}
        return Response(status, str(getattr(reply, "reason", "") or ""), headers_out, reply.content or b"")


def _drive(txn: Any, client: _Adapter) -> str | None:
    """Run one transaction to completion without an event loop; its error kind or None."""
    from aether_perf.load.runner import error_kind

    client.failure = None
    try:
        if not txn.is_async:
            txn.func(client)
            return client.failure
        coro = txn.func(client)
        try:
            coro.send(None)
        except StopIteration:
            return client.failure
        coro.close()
        return "awaited something other than the client (not supported by the locust engine)"
    except Exception as exc:
        return error_kind(exc)


def user_class(scenario: Scenario, recorder: Recorder | None = None, host: str | None = None) -> type:
    """A locust ``FastHttpUser`` subclass that runs ``scenario``'s transactions by weight.

    With a ``recorder`` every transaction is also timed into it (what :func:`run_locust` does).
    """
    import random
    import time

    from locust import FastHttpUser, task

    from aether_perf.load.runner import _Chooser

    choose = _Chooser(scenario.transaction_list)
    low, high = scenario.think_range
    rate = scenario.rate
    pool = scenario.pool_size
    state = {"rate": rate}

    class ScenarioUser(FastHttpUser):
        abstract = False
        network_timeout = scenario.seconds[2]
        connection_timeout = scenario.seconds[2]

        def on_start(self) -> None:
            self.rng = random.Random()
            self.adapter = _Adapter(self.client)
            self.next_start = time.monotonic()
            if recorder is not None:
                recorder.users_changed(+1)

        def on_stop(self) -> None:
            if recorder is not None:
                recorder.users_changed(-1)

        def wait_time(self) -> float:
            if state["rate"] is not None:  # open model, paced: pool users together start `rate` per second
                self.next_start += pool / float(state["rate"])
                return max(0.0, self.next_start - time.monotonic())
            return self.rng.uniform(low, high) if high > 0 else 0.0

        @task
        def run_transaction(self) -> None:
            txn = choose(self.rng)
            started = time.monotonic_ns()
            kind = _drive(txn, self.adapter)
            if recorder is not None:
                recorder.record(txn.name, started, started, time.monotonic_ns(), kind)

    ScenarioUser.host = host or scenario.host
    ScenarioUser.__name__ = ScenarioUser.__qualname__ = (
        "".join(c for c in scenario.name.title() if c.isalnum()) + "User"
    )
    ScenarioUser._aether_state = state  # type: ignore[attr-defined]
    return ScenarioUser


def _child(argv: list[str]) -> int:
    """The child process: load the scenario, run it under locust, write the result JSON."""
    import argparse
    import dataclasses

    from gevent import monkey  # type: ignore[import-untyped]

    monkey.patch_all()
    import logging
    import time

    import gevent
    from locust.env import Environment

    from aether_perf.load.loader import load_scenario
    from aether_perf.load.result import LoadTestResult, Window
    from aether_perf.load.runner import Progress, Recorder

    logging.getLogger("locust").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser()
    parser.add_argument("source")
    parser.add_argument("--name")
    parser.add_argument("--host", required=True)
    parser.add_argument("--settings", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    try:
        base = load_scenario(args.source, args.name)
        settings = json.loads(args.settings)
        settings["think_time"] = tuple(settings["think_time"])
        scenario = dataclasses.replace(base, **settings)
    except InvalidArgument as exc:
        print(exc, file=sys.stderr)
        return 2
    plan = scenario.stages()
    started_at = time.time()
    t0 = time.monotonic_ns()
    recorder = Recorder(plan, t0)
    cls = user_class(scenario, recorder, args.host)
    env = Environment(user_classes=[cls], host=args.host, catch_exceptions=True)
    runner = env.create_local_runner()

    def ticker() -> None:
        while True:
            gevent.sleep(1.0)
            now = time.monotonic_ns()
            second = (now - t0) // 1_000_000_000 - 1
            window = recorder.windows.setdefault(second, Window(second))
            window.users = recorder.users
            p = Progress(
                elapsed=(now - t0) / 1e9,
                total=scenario.total_duration,
                stage=recorder.stage_of(now).name,
                users=recorder.users,
                completed=recorder.completed,
                errors=recorder.errors,
                late=0,
                backlog=0,
                recent_rps=float(window.count),
                recent_p95=window.corrected.percentile(95) / 1e9 if window.corrected.count else float("nan"),
            )
            print("PROGRESS " + json.dumps(dataclasses.asdict(p)), flush=True)

    tick = gevent.spawn(ticker)
    state = cls._aether_state  # type: ignore[attr-defined]
    for stage in plan:
        delay = t0 / 1e9 + stage.start - time.monotonic()
        if delay > 0:
            gevent.sleep(delay)
        state["rate"] = stage.rate
        users = stage.users if stage.users is not None else scenario.pool_size
        runner.start(users, spawn_rate=max(1000.0, users * 100.0))
    gevent.sleep(max(0.0, t0 / 1e9 + plan[-1].end - time.monotonic()))
    runner.stop()
    runner.quit()
    tick.kill()
    result = LoadTestResult(scenario.name, scenario.model, args.host, engine="locust", started_at=started_at)
    result.stages = recorder.stages
    result.timeline = [recorder.windows[k] for k in sorted(recorder.windows)]
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(result.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
