"""SARIF 2.1.0 (OASIS): findings as a static-analysis log for VS Code's SARIF viewer and GitHub
code scanning.

One run whose ``tool.driver`` lists one rule per distinct ``Finding.rule`` (with its default level)
and one result per finding. Levels: ``error`` -> ``error``, ``warning`` -> ``warning``, ``info`` ->
``note``. A location is written only when it names an existing file and a line inside it (a
finding for a file that has since changed or vanished keeps its message, without a location that
points nowhere). Paths below ``root`` (the working directory by default) are written relative to
it with ``uriBaseId`` ``%SRCROOT%`` (what code scanning matches against the checkout); others as
absolute ``file://`` URIs. The numbers go in the message and in ``properties`` (measured,
threshold, unit, evidence) for tools that read them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aether_perf.fileio import PathOrText, open_text_output
from aether_perf.model.finding import Finding

__all__ = ["SARIF_SCHEMA", "SARIF_VERSION", "to_sarif", "write"]

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
INFORMATION_URI = "https://github.com/aether-native/aether-native"


def _line_count(path: str, cache: dict[str, int | None]) -> int | None:
    if path not in cache:
        try:
            with open(path, "rb") as handle:
                cache[path] = sum(1 for _ in handle)
        except OSError:
            cache[path] = None
    return cache[path]


def _artifact(file: str, root: str) -> dict[str, str]:
    path = os.path.abspath(file)
    if path.startswith(root + os.sep):
        return {"uri": Path(os.path.relpath(path, root)).as_posix(), "uriBaseId": "%SRCROOT%"}
    return {"uri": Path(path).as_uri()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value


def to_sarif(
    findings: Sequence[Finding], *, tool_version: str = "", root: str | None = None
) -> dict[str, Any]:
    """The SARIF log (a JSON-ready dict) of ``findings``."""
    base = os.path.abspath(root or os.getcwd())
    rules: dict[str, int] = {}
    rule_entries: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    lines: dict[str, int | None] = {}
    for finding in findings:
        if finding.rule not in rules:
            rules[finding.rule] = len(rule_entries)
            rule_entries.append(
                {
                    "id": finding.rule,
                    "name": finding.title,
                    "shortDescription": {"text": finding.title},
                    "defaultConfiguration": {"level": _LEVEL[finding.severity]},
                }
            )
        text = finding.message
        if finding.suggestions:
            text += " Try: " + "; ".join(finding.suggestions)
        result: dict[str, Any] = {
            "ruleId": finding.rule,
            "ruleIndex": rules[finding.rule],
            "level": _LEVEL[finding.severity],
            "message": {"text": text},
            "properties": _jsonable(
                {
                    "measured": finding.measured,
                    "threshold": finding.threshold,
                    "unit": finding.unit,
                    "evidence": finding.evidence,
                    "evaluated": finding.evaluated,
                }
            ),
        }
        loc = finding.location
        if loc is not None and loc.file:
            count = _line_count(loc.file, lines)
            if count is not None:
                physical: dict[str, Any] = {"artifactLocation": _artifact(loc.file, base)}
                if 1 <= loc.line <= count:
                    physical["region"] = {"startLine": loc.line}
                location: dict[str, Any] = {"physicalLocation": physical}
                if loc.function:
                    location["logicalLocations"] = [{"name": loc.function, "kind": "function"}]
                result["locations"] = [location]
        results.append(result)
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "aether",
                "informationUri": INFORMATION_URI,
                "rules": rule_entries,
            }
        },
        "originalUriBaseIds": {"%SRCROOT%": {"uri": Path(base).as_uri() + "/"}},
        "results": results,
    }
    if tool_version:
        run["tool"]["driver"]["version"] = tool_version
    return {"version": SARIF_VERSION, "$schema": SARIF_SCHEMA, "runs": [run]}


def write(
    findings: Sequence[Finding], file: PathOrText, *, tool_version: str = "", root: str | None = None
) -> None:
    """Write the SARIF log of ``findings`` to ``file`` (a path, written atomically, or a text file)."""
    log = to_sarif(findings, tool_version=tool_version, root=root)
    with open_text_output(file) as out:
        json.dump(log, out, indent=2)
        out.write("\n")
