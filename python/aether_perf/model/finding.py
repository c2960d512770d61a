"""Finding: one diagnosis with its evidence, the unit every rule-based analysis returns.

Counter bottlenecks, lock contention, scheduling and I/O rules, allocation and hot-spot checks all
produce :class:`Finding` objects, so one renderer (text, JSON, SARIF, GitHub annotations) serves
them all. A finding states what was measured against which threshold, where (when a source
location is known) and what to try; ``evaluated=False`` marks a rule that could not be checked
(for example a hardware counter this machine lacks), with ``message`` saying why.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["SEVERITIES", "Finding", "Location", "Severity"]

Severity = Literal["info", "warning", "error"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "error")


@dataclass(frozen=True, slots=True)
class Location:
    """A place in the program's source: ``line`` is 1-based, 0 when only the file is known."""

    file: str
    line: int = 0
    function: str = ""


@dataclass(frozen=True, slots=True)
class Finding:
    """``rule`` is a stable identifier (``"cpu.low-ipc"``, ``"locks.contended"``); ``measured``
    and ``threshold`` are in ``unit``; ``evidence`` holds the other numbers behind the verdict."""

    rule: str
    title: str
    severity: Severity
    message: str
    measured: float | None = None
    threshold: float | None = None
    unit: str = ""
    suggestions: tuple[str, ...] = ()
    location: Location | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    evaluated: bool = True

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, not {self.severity!r}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists)."""
        data = asdict(self)
        data["suggestions"] = list(self.suggestions)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        location = data.get("location")
        return cls(
            rule=str(data["rule"]),
            title=str(data["title"]),
            severity=data["severity"],
            message=str(data["message"]),
            measured=data.get("measured"),
            threshold=data.get("threshold"),
            unit=str(data.get("unit", "")),
            suggestions=tuple(data.get("suggestions", ())),
            location=Location(**location) if location else None,
            evidence=dict(data.get("evidence", {})),
            evaluated=bool(data.get("evaluated", True)),
        )
