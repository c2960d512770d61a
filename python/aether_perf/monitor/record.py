"""Recording the series to JSON lines, and reading them back for reports.

The first line is a header (``{"kind": "aether-metrics", "version": 1, ...}``: scope, interval,
series and their units); then one line per sample (``{"t": epoch, "v": {series: value}}``) and
one per alert event (``{"alert": {...}}``). Each line is flushed as written, so a recording
survives the monitor being killed; a torn last line is skipped on reading.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from aether_perf.errors import ProfileFormatError
from aether_perf.monitor.metrics import SERIES, Sample

__all__ = ["KIND", "MetricsRecording", "Recorder", "is_recording", "read_recording"]

KIND = "aether-metrics"
VERSION = 1


class Recorder:
    """Write a recording to ``path`` (replacing an earlier recording; never another kind of file)."""

    def __init__(
        self, path: str | os.PathLike[str], *, scope: str, interval: float, series: tuple[str, ...]
    ) -> None:
        self.path = Path(path)
        if self.path.exists() and self.path.stat().st_size > 0 and not is_recording(self.path):
            raise ProfileFormatError(
                f"refusing to overwrite '{self.path}': it is not an aether metrics recording"
            )
        self._handle: TextIO = self.path.open("w", encoding="utf-8")
        header = {
            "kind": KIND,
            "version": VERSION,
            "scope": scope,
            "interval": interval,
            "series": {name: SERIES[name].unit for name in series},
        }
        self._write(header)

    def _write(self, record: dict[str, Any]) -> None:
        self._handle.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._handle.flush()

    def sample(self, sample: Sample) -> None:
        self._write({"t": round(sample.time, 6), "v": sample.values})

    def alert(self, event: Any) -> None:
        self._write({"alert": event.to_dict()})

    def close(self) -> None:
        self._handle.close()


def is_recording(path: str | os.PathLike[str]) -> bool:
    """True when the file starts with an aether metrics header."""
    try:
        with open(path, encoding="utf-8") as handle:
            first = handle.readline(4096)
        return bool(json.loads(first).get("kind") == KIND)
    except (OSError, ValueError, AttributeError):
        return False


@dataclass
class MetricsRecording:
    scope: str
    interval: float
    units: dict[str, str]
    times: list[float] = field(default_factory=list)
    series: dict[str, list[float | None]] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)


def read_recording(path: str | os.PathLike[str]) -> MetricsRecording:
    """Read a recording; ProfileFormatError (naming the file and the line) if it is not one."""
    path = Path(path)
    with path.open(encoding="utf-8", errors="replace") as handle:
        lines = handle.read().splitlines()
    try:
        header = json.loads(lines[0]) if lines else None
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("kind") != KIND:
        raise ProfileFormatError(f"'{path}' is not an aether metrics recording (no header line)")
    if header.get("version") != VERSION:
        raise ProfileFormatError(f"'{path}': unsupported recording version {header.get('version')!r}")
    units = {str(k): str(v) for k, v in dict(header.get("series", {})).items()}
    rec = MetricsRecording(str(header.get("scope", "")), float(header.get("interval", 0)), units)
    rec.series = {name: [] for name in units}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            if number == len(lines):  # the monitor was killed mid-line
                break
            raise ProfileFormatError(f"'{path}':{number}: not a JSON line") from None
        if "alert" in record:
            rec.alerts.append(record["alert"])
            continue
        try:
            when = float(record["t"])
            values = record["v"]
        except (KeyError, TypeError, ValueError):
            raise ProfileFormatError(f"'{path}':{number}: not a sample line") from None
        rec.times.append(when)
        for name in rec.series:
            value = values.get(name)
            rec.series[name].append(float(value) if isinstance(value, int | float) else None)
    return rec
