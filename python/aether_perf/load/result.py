"""What a load test measured: per stage and per transaction, plus a per-second timeline.

Every number is kept in a mergeable form (counts, and histograms whose merge is exact), so the
results of several worker processes add up to the result one process would have recorded, and a
saved JSON result can be merged again later. Latencies are nanoseconds inside, seconds outside.

- ``corrected``: latency from the transaction's *intended* start (open model; coordinated-omission
  corrected, as wrk2's default). In the closed model a transaction is intended to start when it does,
  so corrected and raw are the same.
- ``raw``: latency from the moment the transaction actually started.
- Histograms hold successful transactions; failed ones are counted by kind in ``errors``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aether_perf.errors import InvalidArgument
from aether_perf.load.histogram import Histogram, decode, encode, summary
from aether_perf.load.scenario import Stage

__all__ = ["FORMAT", "LoadTestResult", "StageResult", "TransactionStats", "Window"]

FORMAT = "aether-load-result"
VERSION = 1


@dataclass
class TransactionStats:
    """One transaction's latencies (corrected and raw) and errors by kind."""

    corrected: Histogram = field(default_factory=Histogram)
    raw: Histogram = field(default_factory=Histogram)
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return self.corrected.count

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def count(self) -> int:
        return self.ok + self.error_count

    @property
    def error_rate(self) -> float:
        return self.error_count / self.count if self.count else 0.0

    def merge(self, other: TransactionStats) -> None:
        self.corrected.merge(other.corrected)
        self.raw.merge(other.raw)
        for kind, n in other.errors.items():
            self.errors[kind] = self.errors.get(kind, 0) + n

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "ok": self.ok,
            "errors": dict(sorted(self.errors.items())),
            "latency": summary(self.corrected),
            "raw_latency": summary(self.raw),
            "histograms": {"corrected": encode(self.corrected), "raw": encode(self.raw)},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TransactionStats:
        hist = data["histograms"]
        return cls(
            decode(hist["corrected"]),
            decode(hist["raw"]),
            {str(k): int(v) for k, v in data["errors"].items()},
        )


def _merge_stats(into: dict[str, TransactionStats], other: Mapping[str, TransactionStats]) -> None:
    for name, stats in other.items():
        into.setdefault(name, TransactionStats()).merge(stats)


def _total(stats: Iterable[TransactionStats]) -> TransactionStats:
    out = TransactionStats()
    for s in stats:
        out.merge(s)
    return out


@dataclass
class StageResult:
    """One stage: its plan, what ran in it, and the starts that were late or dropped.

    A transaction belongs to the stage in which it was (intended to be) started.
    """

    stage: Stage
    transactions: dict[str, TransactionStats] = field(default_factory=dict)
    peak_users: int = 0  # most virtual users running at once (summed over workers)
    late: int = 0  # open model: starts that waited for a free virtual user
    dropped: int = 0  # open model: starts still waiting when the test ended

    @property
    def name(self) -> str:
        return self.stage.name

    @property
    def total(self) -> TransactionStats:
        """All transactions of the stage together."""
        return _total(self.transactions.values())

    @property
    def throughput(self) -> float:
        """Completed transactions (ok or not) per second of the stage."""
        return self.total.count / self.stage.duration if self.stage.duration > 0 else math.nan

    def merge(self, other: StageResult) -> None:
        _merge_stats(self.transactions, other.transactions)
        self.peak_users += other.peak_users
        self.late += other.late
        self.dropped += other.dropped

    def to_dict(self) -> dict[str, Any]:
        total = self.total
        s = self.stage
        return {
            "name": s.name,
            "kind": s.kind,
            "start": s.start,
            "duration": s.duration,
            "target_users": s.users,
            "target_rate": s.rate,
            "peak_users": self.peak_users,
            "late_starts": self.late,
            "dropped_starts": self.dropped,
            "throughput": total.count / s.duration if s.duration > 0 else None,
            "total": total.to_dict(),
            "transactions": {name: t.to_dict() for name, t in sorted(self.transactions.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StageResult:
        stage = Stage(
            data["name"],
            data["kind"],
            float(data["start"]),
            float(data["duration"]),
            data["target_users"],
            data["target_rate"],
        )
        txns = {name: TransactionStats.from_dict(t) for name, t in data["transactions"].items()}
        return cls(
            stage, txns, int(data["peak_users"]), int(data["late_starts"]), int(data["dropped_starts"])
        )


@dataclass
class Window:
    """One second of the test (``second`` since its start): what completed in it."""

    second: int
    corrected: Histogram = field(default_factory=Histogram)
    raw: Histogram = field(default_factory=Histogram)
    errors: int = 0
    users: int = 0  # virtual users running at the end of the second

    @property
    def count(self) -> int:
        return self.corrected.count + self.errors

    def merge(self, other: Window) -> None:
        self.corrected.merge(other.corrected)
        self.raw.merge(other.raw)
        self.errors += other.errors
        self.users += other.users

    def to_dict(self) -> dict[str, Any]:
        return {
            "second": self.second,
            "count": self.count,
            "errors": self.errors,
            "users": self.users,
            "latency": summary(self.corrected),
            "raw_latency": summary(self.raw),
            "histograms": {"corrected": encode(self.corrected), "raw": encode(self.raw)},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Window:
        h = data["histograms"]
        return cls(
            int(data["second"]),
            decode(h["corrected"]),
            decode(h["raw"]),
            int(data["errors"]),
            int(data["users"]),
        )


@dataclass
class LoadTestResult:
    """A whole load test: stages (ramp-up steps, then ``sustained``), timeline and totals."""

    scenario: str
    model: str
    host: str
    engine: str = "native"
    workers: int = 1
    started_at: float = 0.0  # time.time() at the test start
    stages: list[StageResult] = field(default_factory=list)
    timeline: list[Window] = field(default_factory=list)
    worker_results: list[LoadTestResult] = field(default_factory=list, repr=False)
    interrupted: bool = False  # stopped early (Ctrl-C): stages hold the time they really ran

    @property
    def sustained(self) -> StageResult:
        """The stage at full load after the ramp-up."""
        return self.stages[-1]

    @property
    def duration(self) -> float:
        return sum(s.stage.duration for s in self.stages)

    @property
    def transactions(self) -> dict[str, TransactionStats]:
        """Per transaction, over every stage."""
        out: dict[str, TransactionStats] = {}
        for stage in self.stages:
            _merge_stats(out, stage.transactions)
        return out

    @property
    def total(self) -> TransactionStats:
        """Every transaction of every stage."""
        return _total(s.total for s in self.stages)

    @property
    def late(self) -> int:
        return sum(s.late for s in self.stages)

    @property
    def dropped(self) -> int:
        return sum(s.dropped for s in self.stages)

    @property
    def throughput(self) -> float:
        return self.total.count / self.duration if self.duration > 0 else math.nan

    @classmethod
    def merge(cls, results: list[LoadTestResult]) -> LoadTestResult:
        """One result from the results of workers that ran the same stages at the same time."""
        if not results:
            raise InvalidArgument("nothing to merge")
        first = results[0]
        out = cls(first.scenario, first.model, first.host, first.engine, len(results), first.started_at)
        out.stages = [StageResult(s.stage) for s in first.stages]
        windows: dict[int, Window] = {}
        for result in results:
            if [s.stage.name for s in result.stages] != [s.stage.name for s in out.stages]:
                raise InvalidArgument("cannot merge results of different stages")
            for mine, theirs in zip(out.stages, result.stages, strict=True):
                mine.merge(theirs)
            for w in result.timeline:
                windows.setdefault(w.second, Window(w.second)).merge(w)
        out.timeline = [windows[k] for k in sorted(windows)]
        out.worker_results = list(results)
        out.started_at = min(r.started_at for r in results)
        out.interrupted = any(r.interrupted for r in results)
        return out

    def to_dict(self) -> dict[str, Any]:
        total = self.total
        return {
            "format": FORMAT,
            "version": VERSION,
            "scenario": self.scenario,
            "model": self.model,
            "host": self.host,
            "engine": self.engine,
            "workers": self.workers,
            "started_at": self.started_at,
            "interrupted": self.interrupted,
            "duration": self.duration,
            "throughput": self.throughput,
            "late_starts": self.late,
            "dropped_starts": self.dropped,
            "total": total.to_dict(),
            "transactions": {name: t.to_dict() for name, t in sorted(self.transactions.items())},
            "stages": [s.to_dict() for s in self.stages],
            "timeline": [w.to_dict() for w in self.timeline],
        }

    def to_json(self) -> str:
        return json.dumps(clean_nan(self.to_dict()), indent=1, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoadTestResult:
        if data.get("format") != FORMAT:
            raise InvalidArgument("not an aether load-test result")
        if data.get("version") != VERSION:
            raise InvalidArgument(f"load-test result version {data.get('version')!r} is not {VERSION}")
        try:
            out = cls(
                data["scenario"],
                data["model"],
                data["host"],
                data["engine"],
                int(data["workers"]),
                float(data["started_at"]),
            )
            out.interrupted = bool(data.get("interrupted", False))
            out.stages = [StageResult.from_dict(s) for s in data["stages"]]
            out.timeline = [Window.from_dict(w) for w in data["timeline"]]
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgument(f"bad load-test result: {exc!r}") from None
        return out

    @classmethod
    def from_json(cls, text: str) -> LoadTestResult:
        try:
            data = json.loads(text, parse_constant=lambda _: None)
        except ValueError as exc:
            raise InvalidArgument(f"not an aether load-test result: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidArgument("not an aether load-test result")
        return cls.from_dict(data)


def clean_nan(data: Any) -> Any:
    """``data`` with every nan float replaced by None (JSON has no nan)."""
    if isinstance(data, float):
        return None if math.isnan(data) else data
    if isinstance(data, dict):
        return {k: clean_nan(v) for k, v in data.items()}
    if isinstance(data, list):
        return [clean_nan(v) for v in data]
    return data
