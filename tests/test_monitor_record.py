"""Recordings (JSON lines) round-trip, survive a torn last line, refuse foreign files, and render
as a self-contained HTML page with the alert marks and table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aether_perf.errors import ProfileFormatError
from aether_perf.monitor.alerts import AlertSystem, Rule
from aether_perf.monitor.metrics import Sample
from aether_perf.monitor.record import Recorder, is_recording, read_recording
from aether_perf.report.metrics_html import CHART_HEIGHT, render_metrics_html

T0 = 1_700_000_000.0


def record(path: Path) -> None:
    recorder = Recorder(path, scope="pid 42", interval=1.0, series=("cpu_percent", "threads"))
    alerts = AlertSystem([Rule("busy", "cpu_percent", warning=50, cooldown=0)])
    for i, cpu in enumerate([10.0, 60.0, 70.0, 20.0]):
        sample = Sample(T0 + i, {"cpu_percent": cpu, "threads": 3.0 + i})
        recorder.sample(sample)
        for event in alerts.check(sample):
            recorder.alert(event)
    recorder.close()


def test_round_trip_and_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    record(path)
    assert is_recording(path)
    rec = read_recording(path)
    assert (rec.scope, rec.interval, rec.units) == ("pid 42", 1.0, {"cpu_percent": "%", "threads": ""})
    assert rec.times == [T0, T0 + 1, T0 + 2, T0 + 3]
    assert rec.series == {"cpu_percent": [10.0, 60.0, 70.0, 20.0], "threads": [3.0, 4.0, 5.0, 6.0]}
    assert [(a["state"], a["time"]) for a in rec.alerts] == [("warning", T0 + 1), ("resolved", T0 + 3)]
    with path.open("a") as handle:
        handle.write('{"t": 1700000004, "v": {"cpu_')  # killed mid-line
    assert read_recording(path).times == rec.times


def test_foreign_files(tmp_path: Path) -> None:
    other = tmp_path / "notes.jsonl"
    other.write_text("hello\n")
    assert not is_recording(other)
    with pytest.raises(ProfileFormatError, match="not an aether metrics recording"):
        read_recording(other)
    with pytest.raises(ProfileFormatError, match="refusing to overwrite"):
        Recorder(other, scope="machine", interval=1.0, series=("threads",))
    assert other.read_text() == "hello\n"


def test_html_page(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    record(path)
    page = render_metrics_html(read_recording(path))
    assert "<script" not in page and "<link" not in page
    cpu = re.search(
        r'data-min="([^"]+)" data-max="([^"]+)"[^>]*><polyline data-series="cpu_percent" '
        r'points="([^"]*)"/>(.*?)</svg>',
        page,
    )
    assert cpu is not None
    low, high = float(cpu[1]), float(cpu[2])
    assert (low, high) == (0.0, 70.0)  # CPU is scaled to its peak, from zero
    ys = [float(p.split(",")[1]) for p in cpu[3].split()]
    plot = CHART_HEIGHT - 8
    expected = [4 + (1 - v / 70.0) * plot for v in (10.0, 60.0, 70.0, 20.0)]
    assert ys == pytest.approx(expected, abs=0.01)
    marks = re.findall(r'<line x1="([\d.]+)"[^>]*stroke="(#[0-9a-f]+)"', cpu[4])
    assert [color for _, color in marks] == ["#e0a800", "#2ca02c"]  # warning, then resolved
    rows = re.findall(r"<tr><td>[^<]*</td><td>busy</td><td>(\w+)</td><td>([^<]*)</td></tr>", page)
    assert [state for state, _ in rows] == ["warning", "resolved"]
    assert rows[0][1] == "WARNING busy: cpu_percent = 60.0% &gt;= 50.0%"
