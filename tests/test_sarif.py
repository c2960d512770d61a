"""SARIF 2.1.0 output: valid against the OASIS schema (tests/data/sarif-2.1.0.json, JSON Schema
2020-12), locations on existing lines, levels from the findings' severities."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from workloads import cli_env

ROOT = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("aether_perf") is None:
    sys.path.insert(0, str(ROOT / "python"))

from aether_perf.export.sarif import to_sarif, write  # noqa: E402
from aether_perf.model import Finding, Location  # noqa: E402

SCHEMA = json.loads((ROOT / "tests" / "data" / "sarif-2.1.0.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
PROBLEMS = ROOT / "examples" / "chapter_problems.py"


def test_schema_is_not_vacuous() -> None:
    log = to_sarif([])
    VALIDATOR.validate(log)
    log["version"] = "2.0.0"
    assert not VALIDATOR.is_valid(log)
    broken = to_sarif([Finding("r", "t", "warning", "m")])
    broken["runs"][0]["results"][0]["level"] = "severe"
    assert not VALIDATOR.is_valid(broken)


def test_diagnose_sarif_validates_and_points_at_lines(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "aether_native",
            "diagnose",
            "--sarif",
            "out.sarif",
            "--",
            str(PROBLEMS),
            "--check",
            "50",
            "--rounds",
            "50",
        ],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    log = json.loads((tmp_path / "out.sarif").read_text())
    VALIDATOR.validate(log)
    run = log["runs"][0]
    rules = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    assert "alloc.growth" in rules
    source = PROBLEMS.read_text().splitlines()
    growth = [r for r in run["results"] if r["ruleId"] == "alloc.growth"]
    assert len(growth) == 1 and growth[0]["level"] == "warning"
    assert rules[growth[0]["ruleIndex"]] == "alloc.growth"
    located = [r for r in run["results"] if "locations" in r]  # counter and scheduling ones have none
    assert {"alloc.growth", "locks.contended"} <= {r["ruleId"] for r in located}
    for result in located:
        physical = result["locations"][0]["physicalLocation"]
        uri = physical["artifactLocation"]["uri"]
        assert uri == PROBLEMS.as_uri()  # outside the working directory: an absolute file URI
        assert 1 <= physical["region"]["startLine"] <= len(source)
    line = growth[0]["locations"][0]["physicalLocation"]["region"]["startLine"]
    assert ".append(" in source[line - 1]
    assert "reallocations" in growth[0]["message"]["text"]
    assert growth[0]["properties"]["measured"] >= 32


def test_relative_uris_levels_and_missing_files(tmp_path: Path) -> None:
    src = tmp_path / "pkg" / "mod.py"
    src.parent.mkdir()
    src.write_text("a = 1\nb = 2\n")
    findings = [
        Finding("x.err", "bad", "error", "e", location=Location(str(src), 2, "f")),
        Finding("x.info", "fyi", "info", "i", location=Location(str(src), 99)),  # past the end
        Finding("x.warn", "gone", "warning", "w", location=Location(str(tmp_path / "gone.py"), 1)),
        Finding("x.warn", "none", "warning", "n"),
    ]
    out = tmp_path / "log.sarif"
    write(findings, out, tool_version="1.2.3", root=str(tmp_path))
    log = json.loads(out.read_text())
    VALIDATOR.validate(log)
    results = log["runs"][0]["results"]
    assert [r["level"] for r in results] == ["error", "note", "warning", "warning"]
    first = results[0]["locations"][0]["physicalLocation"]
    assert first["artifactLocation"] == {"uri": "pkg/mod.py", "uriBaseId": "%SRCROOT%"}
    assert first["region"] == {"startLine": 2}
    assert "region" not in results[1]["locations"][0]["physicalLocation"]
    assert "locations" not in results[2] and "locations" not in results[3]
    assert [r["ruleIndex"] for r in results] == [0, 1, 2, 2]
    assert log["runs"][0]["tool"]["driver"]["version"] == "1.2.3"


@pytest.mark.parametrize("severity", ["info", "warning", "error"])
def test_every_severity_validates(severity: str) -> None:
    finding = Finding("r", "t", severity, "m", evidence={"n": 3, "xs": (1, 2)})  # type: ignore[arg-type]
    VALIDATOR.validate(to_sarif([finding]))
