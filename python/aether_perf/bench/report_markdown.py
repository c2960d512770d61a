"""A GitHub-flavoured markdown summary (for ``$GITHUB_STEP_SUMMARY`` and CI logs)."""

from __future__ import annotations

from aether_perf.bench.comparison import ComparisonReport
from aether_perf.bench.formatting import fmt_interval, fmt_p, fmt_pct, fmt_ratio, fmt_time
from aether_perf.bench.results import Suite

__all__ = ["render_markdown"]

_ICONS = {"regression": ":x:", "improvement": ":rocket:", "no change": ":white_check_mark:"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(suite: Suite, report: ComparisonReport | None = None) -> str:
    """The run's results table, and the comparison (verdicts first) when there is one."""
    ident = suite.identity
    lines = [f"## Benchmarks: {_cell(suite.name)}", ""]
    commit = f", git `{ident.git_commit[:10]}`" if ident.git_commit else ""
    lines.append(
        f"{ident.python_implementation} {ident.python_version} on `{_cell(ident.machine_id)}`{commit}"
    )
    lines.append("")
    if report is not None:
        regressions = report.regressions
        verdict = (
            f"**{len(regressions)} regression(s)** beyond {fmt_pct(report.threshold)}"
            if regressions
            else f"No regression beyond {fmt_pct(report.threshold)}"
        )
        lines += [f"{verdict} against `{_cell(report.base_name)}`.", ""]
        for warning in report.warnings:
            lines += ["> [!WARNING]", f"> {_cell(warning)}", ""]
        lines.append("| benchmark | base | head | ratio [95% CI] | p (Holm) | min. detectable | verdict |")
        lines.append("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
        for c in sorted(report.comparisons, key=lambda c: c.verdict != "regression"):
            icon = _ICONS.get(c.verdict, ":grey_question:")
            lines.append(
                f"| `{_cell(c.id)}` | {fmt_time(c.base_median)} | {fmt_time(c.head_median)} | {fmt_ratio(c)} "
                f"| {fmt_p(c.p_adjusted)} | {fmt_pct(c.min_detectable)} | {icon} {c.verdict} |"
            )
        lines.append("")
    lines.append("| benchmark | median | 95% CI | IQR | min | processes x values |")
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: |")
    for bench in suite.benchmarks:
        if not bench.processes:
            continue
        s = bench.summary
        lines.append(
            f"| `{_cell(bench.id)}` | {fmt_time(s.median)} | {fmt_interval(s.ci_low, s.ci_high)} "
            f"| {fmt_time(s.iqr)} | {fmt_time(s.min)} | {s.processes} x {s.values // max(s.processes, 1)} |"
        )
    return "\n".join(lines) + "\n"
