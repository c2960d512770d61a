"""`aether diagnose`: collect findings from every source that has data, and render them.

    evidence = Evidence(profile=..., heap=..., scaling=[(n1, p1), (n2, p2)])
    findings = diagnose(evidence)              # list[Finding], errors first
    render_text(findings, file=sys.stdout)     # or render_json / render_github / export.sarif

Sources are small functions registered in one table (:data:`aether_perf.diagnose.sources.SOURCES`).
"""

from aether_perf.diagnose.pipeline import Evidence, Settings, diagnose
from aether_perf.diagnose.render import render_github, render_json, render_text
from aether_perf.diagnose.sources import SOURCES

__all__ = ["SOURCES", "Evidence", "Settings", "diagnose", "render_github", "render_json", "render_text"]
