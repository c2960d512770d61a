"""The report's findings and concurrency tables (locks, threads, I/O, GIL), as page data.

Layout (null when the profile holds none of it)::

    {"findings": [{"severity", "rule", "title", "message", "where"}, ...],
     "tables": [{"title", "columns": [...], "rows": [[cell, ...], ...]}, ...]}

Cells are strings or numbers, already formatted (report/concurrency_tables.py): the page only
lays them out.
"""

from __future__ import annotations

from typing import Any

from aether_perf.analysis import concurrency
from aether_perf.model.finding import Finding
from aether_perf.model.profile import Profile
from aether_perf.report.concurrency_tables import concurrency_tables

__all__ = ["build_analyses"]


def _where(f: Finding) -> str:
    loc = f.location
    if loc is None:
        return ""
    text = f"{loc.file}:{loc.line}" if loc.line else loc.file
    return f"{text} ({loc.function})" if loc.function else text


def build_analyses(profile: Profile) -> dict[str, Any] | None:
    """The findings and tables of ``profile`` (see the module doc), or None when it has none."""
    tables = concurrency_tables(profile)
    found = concurrency.findings(profile)
    if not tables and not found:
        return None
    return {
        "findings": [
            {
                "severity": f.severity,
                "rule": f.rule,
                "title": f.title,
                "message": f.message,
                "where": _where(f),
            }
            for f in found
        ],
        "tables": tables,
    }
