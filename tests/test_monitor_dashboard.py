"""The textual dashboard driven headless by textual's pilot; the screen's text is asserted."""

from __future__ import annotations

import asyncio
import re
import time

from aether_perf.monitor import AlertSystem, Monitor
from aether_perf.monitor.alerts import Rule
from aether_perf.monitor.dashboard import Dashboard
from aether_perf.monitor.metrics import Collector, MachineCollector
from aether_perf.monitor.session import MonitorSession


class Scripted(Collector):
    """Replays known values (memory rising 2 points per sample from 70 %), so the screen can be
    checked against them; the dashboard, monitor loop and alerts are the real ones."""

    def __init__(self) -> None:
        super().__init__(("cpu", "memory", "threads"))
        self.scope = "scripted"
        self.n = 0

    def _read(self) -> tuple[dict[str, float], dict[str, float]]:
        self.n += 1
        values = {
            "cpu_percent": 50.0,
            "memory_percent": 70.0 + 2.0 * (self.n - 1),
            "memory_bytes": 1024.0**3,
            "threads": 7.0,
        }
        return values, {}


def screen_text(app: Dashboard) -> str:
    strips = app.screen._compositor.render_strips()
    return "\n".join("".join(segment.text for segment in strip) for strip in strips)


async def wait_until(pilot: object, predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)  # type: ignore[attr-defined]


def test_dashboard_rows_alerts_and_keys() -> None:
    monitor = Monitor("cpu,memory,threads", interval=0.1, collector=Scripted(), history=60)
    rules = [
        Rule("memory high", "memory_percent", warning=75, critical=80, predict=600, cooldown=0),
        Rule("threads", "threads", warning=1000),
    ]
    session = MonitorSession(monitor, AlertSystem(rules))
    app = Dashboard(session)

    async def drive() -> None:
        async with app.run_test(size=(140, 40)) as pilot:
            await wait_until(
                pilot,
                lambda: (monitor.samples >= 7 and "samples 7" in screen_text(app)) or monitor.samples > 7,
            )
            monitor.pause(True)  # hold still while the screen is read
            await pilot.pause(0.3)
            text = screen_text(app)
            n = monitor.samples
            last = 70.0 + 2.0 * (n - 1)
            mean = 70.0 + (n - 1)  # mean of an arithmetic series
            mem_line = next(line for line in text.splitlines() if line.startswith("mem ") and "%" in line)
            match = re.match(r"mem\s+([\d.]+)%\s+avg\s+([\d.]+)%\s+peak\s+([\d.]+)%\s+(\S+)", mem_line)
            assert match is not None, mem_line
            assert float(match[1]) == last and float(match[2]) == mean and float(match[3]) == last
            spark = match[4]
            assert len(spark) == n and set(spark) <= set("▁▂▃▄▅▆▇█")
            assert list(spark) == sorted(spark) and spark[-1] > spark[0]  # rising, on a 0-100 scale
            assert spark[0] == "▆"  # 70 % of the way up
            cpu_line = next(line for line in text.splitlines() if line.startswith("cpu "))
            assert "█" * 8 + "░" * 8 in cpu_line and "50.0%" in cpu_line  # gauge half full
            threads_line = next(line for line in text.splitlines() if line.startswith("threads "))
            assert " 7 " in threads_line
            assert "memory high" in text and "critical" in text  # 80 % crossed after 6 samples
            assert "WARNING memory high: memory_percent = 76.0% >= 75.0%" in text
            assert "CRITICAL memory high: memory_percent = 80.0% >= 80.0%" in text
            assert "PREDICTED memory high: memory used will cross 80% in about" in text
            monitor.pause(False)

            await pilot.press("p")
            assert monitor.paused
            await pilot.pause(0.3)
            held = monitor.samples
            assert "PAUSED" in screen_text(app)
            await pilot.pause(0.4)
            assert monitor.samples == held  # nothing sampled while paused
            await pilot.press("p")
            assert not monitor.paused

            await pilot.press("minus")
            assert monitor.interval == 0.2
            await pilot.pause(0.1)
            assert "every 200ms" in screen_text(app)
            await pilot.press("plus")
            await pilot.press("plus")
            assert monitor.interval == 0.05
            await pilot.press("q")
            await pilot.pause(0.2)
        assert app.ended == "quit" and monitor.stopped

    asyncio.run(drive())


def test_dashboard_on_the_real_machine_collector() -> None:
    monitor = Monitor("cpu,memory,io,network,threads", interval=0.1)
    assert isinstance(monitor.collector, MachineCollector)
    app = Dashboard(MonitorSession(monitor), duration=3.0)

    async def drive() -> None:
        async with app.run_test(size=(140, 30)) as pilot:
            await wait_until(pilot, lambda: monitor.samples >= 3)
            await pilot.pause(0.2)
            text = screen_text(app)
            for label in ("cpu ", "mem ", "disk read", "disk write", "net in", "net out", "threads"):
                assert any(line.startswith(label) for line in text.splitlines()), label
            assert "alerts: none configured" in text
            await wait_until(pilot, lambda: app.ended is not None)
        assert app.ended == "duration"

    asyncio.run(drive())
