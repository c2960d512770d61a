"""The JSON Schema (draft 2020-12) of a benchmark results file (``--json``, ``--save``).

Times are seconds per loop. ``processes[].values`` are wall times; ``processes[].running`` the
same values minus the run-queue wait each recorded (``run_delay_ns``). ``stats`` are computed on
the running times: ``median`` is the median of the per-process medians and ``ci_low``/``ci_high``
its bootstrap 95% interval; the other statistics describe all (running) values.
``comparison`` is present in ``--json`` output when the run was compared with a baseline
(``ratio`` is head/base, above 1 is slower; infinite values are written as null).
"""

from __future__ import annotations

from typing import Any

_NUMBER = {"type": "number"}
_OPT_NUMBER = {"type": ["number", "null"]}

_PROCESS = {
    "type": "object",
    "required": ["hashseed", "values", "run_delay_ns", "nivcsw", "contaminated", "reruns", "instructions"],
    "properties": {
        "hashseed": {"type": "integer"},
        "values": {"type": "array", "items": {"type": "number", "exclusiveMinimum": 0}, "minItems": 1},
        "running": {"type": ["array", "null"], "items": {"type": "number", "minimum": 0}},
        "run_delay_ns": {"type": "array", "items": {"type": "integer"}},
        "nivcsw": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "contaminated": {"type": "array", "items": {"type": "boolean"}},
        "reruns": {"type": "integer", "minimum": 0},
        "instructions": {"type": ["array", "null"], "items": _OPT_NUMBER},
    },
}

_STATS = {
    "type": ["object", "null"],
    "required": [
        "values",
        "processes",
        "median",
        "ci_low",
        "ci_high",
        "min",
        "max",
        "mean",
        "stdev",
        "q1",
        "q3",
        "iqr",
        "outliers",
        "cv",
    ],
    "properties": {
        key: _NUMBER
        for key in ("median", "ci_low", "ci_high", "min", "max", "mean", "stdev", "q1", "q3", "iqr", "cv")
    }
    | {"values": {"type": "integer"}, "processes": {"type": "integer"}, "outliers": {"type": "integer"}},
}

_BENCHMARK = {
    "type": "object",
    "required": [
        "id",
        "name",
        "group",
        "file",
        "loops",
        "unit",
        "stats",
        "contaminated",
        "reruns",
        "processes",
    ],
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "group": {"type": ["string", "null"]},
        "file": {"type": "string"},
        "loops": {"type": "integer", "minimum": 1},
        "unit": {"const": "seconds per loop"},
        "stats": _STATS,
        "contaminated": {"type": "integer", "minimum": 0},
        "reruns": {"type": "integer", "minimum": 0},
        "processes": {"type": "array", "items": _PROCESS},
    },
}

_IDENTITY = {
    "type": "object",
    "required": [
        "machine_id",
        "hostname",
        "cpu_model",
        "cpu_count",
        "platform",
        "python_implementation",
        "python_version",
        "python_executable",
        "git_commit",
        "git_branch",
        "git_dirty",
    ],
    "properties": {
        "machine_id": {"type": "string"},
        "cpu_count": {"type": "integer"},
        "python_version": {"type": "string"},
        "git_commit": {"type": ["string", "null"]},
        "git_branch": {"type": ["string", "null"]},
        "git_dirty": {"type": ["boolean", "null"]},
    },
}

_COMPARISON = {
    "type": "object",
    "required": ["base", "head", "threshold", "alpha", "warnings", "benchmarks"],
    "properties": {
        "threshold": _NUMBER,
        "alpha": _NUMBER,
        "warnings": {"type": "array", "items": {"type": "string"}},
        "benchmarks": {
            "type": "array",
            "items": {
                "type": "object",
                "required": [
                    "id",
                    "verdict",
                    "ratio",
                    "ci_low",
                    "ci_high",
                    "p_value",
                    "p_adjusted",
                    "min_detectable",
                    "significant",
                ],
                "properties": {
                    "verdict": {
                        "enum": [
                            "regression",
                            "improvement",
                            "no change",
                            "insufficient data",
                            "new",
                            "missing",
                        ]
                    },
                    "ratio": _OPT_NUMBER,
                    "ci_low": _OPT_NUMBER,
                    "ci_high": _OPT_NUMBER,
                    "p_value": _OPT_NUMBER,
                    "p_adjusted": _OPT_NUMBER,
                    "min_detectable": _OPT_NUMBER,
                    "significant": {"type": "boolean"},
                    "instructions_ratio": _OPT_NUMBER,
                },
            },
        },
    },
}

RESULTS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "aether bench results",
    "type": "object",
    "required": ["format", "version", "name", "created", "identity", "settings", "benchmarks"],
    "properties": {
        "format": {"const": "aether-bench"},
        "version": {"const": 1},
        "name": {"type": "string"},
        "created": {"type": "string"},
        "identity": _IDENTITY,
        "settings": {"type": "object"},
        "benchmarks": {"type": "array", "items": _BENCHMARK},
        "comparison": _COMPARISON,
    },
}
