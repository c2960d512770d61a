"""`aether perf-report` conversions, --diff and --spans, and `aether profile --push`, end to end.

Every test runs `python -m aether_native ...` in a subprocess, as tests/test_cli.py does. Ground
truth comes from the programs profiled: `alpha` burns twice the CPU time of `beta` (bounded by
`time.thread_time`, so the shares do not depend on the machine), a second recording of the same
script gives `beta` a bigger share, and the instrumented program's own spans name its phases. Each
converted report is read back (HTML payload, SVG, pprof, Chrome trace) and compared with the .aprof
it came from. The --push tests talk only to an http.server on 127.0.0.1 started by the test.
"""

from __future__ import annotations

import email.parser
import email.policy
import gzip
import html.parser
import http.server
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from workloads import child_env, describe, self_weights

ROOT = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("aether_perf") is None:  # the source tree, without PYTHONPATH
    sys.path.insert(0, str(ROOT / "python"))

from aether_perf.export import pprof  # noqa: E402
from aether_perf.model import Profile, load  # noqa: E402
from aether_perf.report.html.page import DATA_ELEMENT_ID  # noqa: E402

TIMEOUT = 60
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def _env() -> dict[str, str]:
    env = child_env({"COLUMNS": "200", "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"})
    for name in (*_PROXY_VARIABLES, "NO_COLOR", "FORCE_COLOR", "AETHER_PUSH_TOKEN"):
        env.pop(name, None)  # no proxy between the child and the loopback server; no colour codes
    return env


ENV = _env()

# alpha burns ALPHA_SECONDS of CPU, beta BETA_SECONDS (GROWN_BETA_SECONDS with the argument "grow").
ALPHA_SECONDS, BETA_SECONDS, GROWN_BETA_SECONDS = 0.2, 0.1, 0.4
AB_SCRIPT = f"""\
import sys, time

def alpha(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass

def beta(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass

if __name__ == "__main__":
    grow = sys.argv[1:] == ["grow"]
    alpha({ALPHA_SECONDS})
    beta({GROWN_BETA_SECONDS} if grow else {BETA_SECONDS})
"""

# The same work, instrumented: each phase is a span of a trace written in the profiled program.
TRACED_SCRIPT = """\
import time
from aether_perf.instrumentation import profile_scope, trace

def alpha(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass

def beta(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass

with trace() as recorded:
    with profile_scope("phase_alpha"):
        alpha(0.1)
    with profile_scope("phase_beta"):
        beta(0.05)
recorded.write_chrome_trace("trace.json")
"""

# For --push: leaves a marker (so a test can tell whether it ran), burns a little CPU, exits 3.
PUSH_SCRIPT = """\
import sys, time

def alpha(seconds):
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass

open("ran.marker", "w").close()
alpha(0.05)
print("target done")
sys.exit(3)
"""


def aether(
    args: Sequence[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aether_native", *args],
        cwd=cwd,
        env=ENV if env is None else env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def aether_bytes(args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "aether_native", *args],
        cwd=cwd,
        env=ENV,
        capture_output=True,
        timeout=TIMEOUT,
    )


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def assert_one_line_error(result: subprocess.CompletedProcess[str], status: int = 2) -> str:
    """The command failed with `status` and exactly one `aether: error:` line; returns that line."""
    assert result.returncode == status, describe(result)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, describe(result)
    assert lines[0].startswith("aether: error: "), describe(result)
    assert "Traceback" not in result.stderr
    return lines[0]


def total_weight(profile: Profile) -> int:
    return int(profile.weight_ns.sum())


def ratio(weights: dict[str, float], numerator: str, denominator: str) -> float:
    assert weights.get(denominator, 0) > 0, weights
    return weights.get(numerator, 0) / weights[denominator]


# -- the recordings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recordings:
    directory: Path
    run: Path  # ab.py: alpha 2x beta
    grown: Path  # ab.py grow: beta 2x alpha

    def copy(self, name: str, to: Path, as_name: str | None = None) -> Path:
        target = to / (as_name or name)
        shutil.copy(self.directory / name, target)
        return target


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> Recordings:
    where = tmp_path_factory.mktemp("recordings")
    write(where / "ab.py", AB_SCRIPT)
    for output, extra in (("run.aprof", []), ("grown.aprof", ["grow"])):
        result = aether(["profile", "-q", "-o", output, "ab.py", *extra], where)
        assert result.returncode == 0, describe(result)
    recorded = Recordings(where, where / "run.aprof", where / "grown.aprof")
    # The ground truth the report tests rely on: the recordings have the shares the script burns.
    run_weights = self_weights(load(recorded.run))
    assert 1.5 < ratio(run_weights, "alpha", "beta") < 2.7, run_weights
    grown_weights = self_weights(load(recorded.grown))
    assert 1.5 < ratio(grown_weights, "beta", "alpha") < 2.7, grown_weights
    return recorded


# -- reading the reports back ----------------------------------------------------------------------


class _PageReader(html.parser.HTMLParser):
    """Collects every tag's attributes and the text of the data element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.data_elements = 0
        self._in_data = False
        self.data = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "script" and attributes.get("id") == DATA_ELEMENT_ID:
            self.data_elements += 1
            self._in_data = True

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_data = False

    def handle_data(self, data: str) -> None:
        if self._in_data:
            self.data += data


def read_page(text: str) -> dict[str, Any]:
    """Check that the page is one self-contained HTML document and return its JSON payload."""
    assert text.lstrip().lower().startswith("<!doctype html>")
    reader = _PageReader()
    reader.feed(text)
    reader.close()
    assert reader.data_elements == 1, "the payload is one <script type=application/json> element"
    for tag, attributes in reader.tags:
        for name in ("src", "href", "srcset", "action", "data", "poster"):
            value = (attributes.get(name) or "").strip().lower()
            assert not value.startswith(("http://", "https://", "//")), (tag, name, value)
        if tag == "link":
            raise AssertionError(f"the page links to another resource: {attributes}")
        if tag == "script":
            assert "src" not in attributes, attributes
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", text, re.IGNORECASE)
    payload: dict[str, Any] = json.loads(reader.data)
    return payload


def payload_weights(payload: dict[str, Any]) -> tuple[dict[str, int], dict[str, int]]:
    """Self and total weight (ns) per function name, summed from the payload's timeline cells."""
    functions = payload["functions"]
    parent, func = payload["nodes"]["parent"], payload["nodes"]["func"]
    node_weight = [0] * len(parent)
    for thread in payload["timeline"]["threads"]:
        for node, weight in zip(thread["node"], thread["weight"], strict=True):
            node_weight[node] += weight
    own: dict[str, int] = {}
    total: dict[str, int] = {}
    for node, weight in enumerate(node_weight):
        if node == 0 or not weight:
            continue
        name = functions[func[node]][0]
        own[name] = own.get(name, 0) + weight
        seen: set[str] = set()
        walk = node
        while walk > 0:
            seen.add(functions[func[walk]][0])
            walk = parent[walk]
        for caller in seen:
            total[caller] = total.get(caller, 0) + weight
    return own, total


# -- perf-report --format html / svg / pprof / chrome-trace ----------------------------------------


def test_html_report_is_one_self_contained_page(recordings: Recordings, tmp_path: Path) -> None:
    run = recordings.copy("run.aprof", tmp_path)
    before = run.read_bytes()
    result = aether(["perf-report", "run.aprof", "--format", "html", "-o", "out.html"], tmp_path)
    assert result.returncode == 0, describe(result)
    assert result.stdout == ""
    assert result.stderr.strip() == "aether: wrote html to out.html"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.html", "run.aprof"]  # nothing beside it
    assert run.read_bytes() == before

    payload = read_page((tmp_path / "out.html").read_text(encoding="utf-8"))
    profile = load(run)
    assert payload["meta"]["samples"] == len(profile)
    assert payload["meta"]["total_ns"] == total_weight(profile)
    assert payload["diff"] is None and payload["spans"] is None
    assert {"alpha", "beta"} <= {entry[0] for entry in payload["functions"]}
    own, total = payload_weights(payload)
    assert sum(own.values()) <= total_weight(profile)
    truth = self_weights(profile)
    assert own["alpha"] == truth["alpha"] and own["beta"] == truth["beta"]
    assert own["alpha"] > own["beta"]
    assert 1.5 < ratio(own, "alpha", "beta") < 2.7, own
    assert total["<module>"] >= own["alpha"] + own["beta"]


def test_html_report_to_stdout(recordings: Recordings, tmp_path: Path) -> None:
    recordings.copy("run.aprof", tmp_path)
    result = aether(["perf-report", "run.aprof", "--format", "html", "-o", "-"], tmp_path)
    assert result.returncode == 0, describe(result)
    own, _ = payload_weights(read_page(result.stdout))
    assert own["alpha"] > own["beta"] > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.aprof"]


def test_svg_report_is_xml_with_a_frame_per_function(recordings: Recordings, tmp_path: Path) -> None:
    recordings.copy("run.aprof", tmp_path)
    result = aether(["perf-report", "run.aprof", "--format", "svg", "-o", "flame.svg"], tmp_path)
    assert result.returncode == 0, describe(result)
    text = (tmp_path / "flame.svg").read_text(encoding="utf-8")
    root = ET.fromstring(text)
    namespace = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{namespace}svg"
    titles = [element.text or "" for element in root.iter(f"{namespace}title")]
    shares: dict[str, float] = {}
    for title in titles:
        name = title.split(" ", 1)[0]
        match = re.search(r"total [^,]+, ([\d.]+)%", title)
        if name in ("alpha", "beta") and match:
            shares[name] = shares.get(name, 0.0) + float(match.group(1))
    assert set(shares) == {"alpha", "beta"}, titles
    assert shares["alpha"] > shares["beta"], shares
    assert 1.5 < shares["alpha"] / shares["beta"] < 2.7, shares
    for element in root.iter():  # nothing loaded from elsewhere
        for name, value in element.attrib.items():
            if name.endswith("href") or name == "src":
                assert not value.startswith(("http://", "https://")), (element.tag, name, value)


def test_pprof_report_has_the_profiles_weight(recordings: Recordings, tmp_path: Path) -> None:
    run = recordings.copy("run.aprof", tmp_path)
    result = aether(["perf-report", "run.aprof", "--format", "pprof", "-o", "run.pprof.gz"], tmp_path)
    assert result.returncode == 0, describe(result)
    data = (tmp_path / "run.pprof.gz").read_bytes()
    assert data.startswith(b"\x1f\x8b")
    decoded = pprof.read(tmp_path / "run.pprof.gz")
    profile = load(run)
    assert abs(total_weight(decoded) - total_weight(profile)) <= len(profile)  # 1 ns per sample at most
    weights = self_weights(decoded)
    truth = self_weights(profile)
    assert abs(weights["alpha"] - truth["alpha"]) <= len(profile)
    assert abs(weights["beta"] - truth["beta"]) <= len(profile)
    assert weights["alpha"] > weights["beta"]


def test_pprof_report_to_stdout_is_gzip_bytes(recordings: Recordings, tmp_path: Path) -> None:
    run = recordings.copy("run.aprof", tmp_path)
    result = aether_bytes(["perf-report", "run.aprof", "--format", "pprof", "-o", "-"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"\x1f\x8b")
    gzip.decompress(result.stdout)  # one whole gzip stream, nothing else on stdout
    decoded = pprof.from_bytes(result.stdout)
    assert abs(total_weight(decoded) - total_weight(load(run))) <= len(load(run))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.aprof"]


def test_chrome_trace_report_has_sample_events(recordings: Recordings, tmp_path: Path) -> None:
    run = recordings.copy("run.aprof", tmp_path)
    result = aether(["perf-report", "run.aprof", "--format", "chrome-trace", "-o", "t.json"], tmp_path)
    assert result.returncode == 0, describe(result)
    document = json.loads((tmp_path / "t.json").read_text())
    events = document["traceEvents"]
    assert isinstance(events, list)
    durations: dict[str, float] = {}
    starts: dict[str, float] = {}
    for event in events:
        if event.get("ph") == "X" and event.get("name") in ("alpha", "beta"):
            name = event["name"]
            assert event["dur"] >= 0 and "tid" in event
            assert event["args"]["file"].endswith("ab.py")
            durations[name] = durations.get(name, 0.0) + event["dur"]
            starts[name] = min(starts.get(name, event["ts"]), event["ts"])
    assert set(durations) == {"alpha", "beta"}, events[:20]
    # The events are on the wall-clock timeline: alpha ran first, and for at least its CPU time.
    assert starts["alpha"] < starts["beta"]
    truth = self_weights(load(run))
    for name in ("alpha", "beta"):
        assert durations[name] >= 0.8 * truth[name] / 1000, (durations, truth)


def test_default_output_names_are_beside_the_input(recordings: Recordings, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    data = tmp_path / "data"
    data.mkdir()
    run = recordings.copy("run.aprof", data)
    before = run.read_bytes()
    expected = {"html": "run.html", "svg": "run.svg", "pprof": "run.pb.gz", "chrome-trace": "run.trace.json"}
    for fmt, name in expected.items():
        result = aether(["perf-report", str(run), "--format", fmt], elsewhere)
        assert result.returncode == 0, describe(result)
        assert result.stdout == ""
        assert result.stderr.startswith(f"aether: wrote {fmt} to "), result.stderr
        assert result.stderr.rstrip().endswith(name), result.stderr
        assert (data / name).is_file(), (fmt, sorted(p.name for p in data.iterdir()))
    assert sorted(p.name for p in data.iterdir()) == sorted(["run.aprof", *expected.values()])
    assert list(elsewhere.iterdir()) == []
    assert run.read_bytes() == before
    read_page((data / "run.html").read_text(encoding="utf-8"))
    ET.parse(data / "run.svg")
    pprof.read(data / "run.pb.gz")
    assert json.loads((data / "run.trace.json").read_text())["traceEvents"]


# -- perf-report --diff ----------------------------------------------------------------------------


def _diff_rows(text: str) -> dict[str, list[str]]:
    """The first table of the diff (functions by change of self share): columns per function."""
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():
        cells = line.split()
        if len(cells) >= 8 and re.fullmatch(r"[+-]?\d+(\.\d+)?pp", cells[0]) and cells[6] not in rows:
            rows[cells[6]] = cells
    return rows


def test_diff_text_shows_the_function_that_grew(recordings: Recordings, tmp_path: Path) -> None:
    recordings.copy("run.aprof", tmp_path, "base.aprof")
    recordings.copy("grown.aprof", tmp_path, "new.aprof")
    result = aether(["perf-report", "new.aprof", "--diff", "base.aprof"], tmp_path)
    assert result.returncode == 0, describe(result)
    rows = _diff_rows(result.stdout)
    assert {"alpha", "beta"} <= set(rows), result.stdout
    beta_change = float(rows["beta"][0].removesuffix("pp"))
    alpha_change = float(rows["alpha"][0].removesuffix("pp"))
    # Ground truth: beta's share goes from 1/3 (0.1 of 0.3 s) to 2/3 (0.4 of 0.6 s), alpha's the other way.
    assert 20 < beta_change < 45, result.stdout
    assert -45 < alpha_change < -20, result.stdout
    base_share = float(rows["beta"][1].rstrip("%"))
    new_share = float(rows["beta"][2].rstrip("%"))
    assert base_share < new_share and abs(new_share - base_share - beta_change) < 0.2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base.aprof", "new.aprof"]


def test_diff_html_is_a_differential_page(recordings: Recordings, tmp_path: Path) -> None:
    base = recordings.copy("run.aprof", tmp_path, "base.aprof")
    new = recordings.copy("grown.aprof", tmp_path, "new.aprof")
    result = aether(["perf-report", "new.aprof", "--diff", "base.aprof", "--format", "html"], tmp_path)
    assert result.returncode == 0, describe(result)
    assert result.stderr.strip() == "aether: wrote html to new-vs-base.html"
    payload = read_page((tmp_path / "new-vs-base.html").read_text(encoding="utf-8"))
    base_profile, new_profile = load(base), load(new)
    assert payload["meta"]["total_ns"] == total_weight(new_profile)
    diff = payload["diff"]
    assert diff is not None
    assert diff["total_ns"] == total_weight(base_profile)
    assert diff["samples"] == len(base_profile)
    names = [entry[0] for entry in payload["functions"]]
    base_truth = self_weights(base_profile)
    base_whole = sum(base_truth.values())
    for name in ("alpha", "beta"):
        base_pct = diff["self_pct"][names.index(name)]
        assert abs(base_pct - 100 * base_truth[name] / base_whole) < 0.01, (name, diff)
    own, _ = payload_weights(payload)
    new_whole = sum(own.values())
    beta_base = diff["self_pct"][names.index("beta")]
    assert 100 * own["beta"] / new_whole > beta_base + 20  # beta grew: the page colours it red
    assert 0 <= diff["gone_pct"] < 2  # both runs take the same paths (a stray sample aside)


def test_diff_with_svg_is_refused(recordings: Recordings, tmp_path: Path) -> None:
    recordings.copy("run.aprof", tmp_path, "base.aprof")
    recordings.copy("grown.aprof", tmp_path, "new.aprof")
    result = aether(["perf-report", "new.aprof", "--diff", "base.aprof", "--format", "svg"], tmp_path)
    line = assert_one_line_error(result)
    assert "--diff" in line and "svg" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base.aprof", "new.aprof"]


@pytest.mark.parametrize("fmt", ["text", "html"])
def test_diff_with_a_missing_base(recordings: Recordings, tmp_path: Path, fmt: str) -> None:
    recordings.copy("grown.aprof", tmp_path, "new.aprof")
    result = aether(["perf-report", "new.aprof", "--diff", "gone.aprof", "--format", fmt], tmp_path)
    line = assert_one_line_error(result)
    assert "gone.aprof" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.aprof"]


# -- perf-report --spans ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A profile of the instrumented program, and the trace it wrote itself, in one directory."""
    where = tmp_path_factory.mktemp("traced")
    write(where / "traced.py", TRACED_SCRIPT)
    result = aether(["profile", "-q", "-o", "traced.aprof", "traced.py"], where)
    assert result.returncode == 0, describe(result)
    assert (where / "trace.json").is_file() and (where / "traced.aprof").is_file()
    return where


def test_spans_show_up_in_the_html_payload(traced: Path, tmp_path: Path) -> None:
    for name in ("traced.aprof", "trace.json"):
        shutil.copy(traced / name, tmp_path / name)
    args = ["perf-report", "traced.aprof", "--format", "html", "--spans", "trace.json", "-o", "s.html"]
    result = aether(args, tmp_path)
    assert result.returncode == 0, describe(result)
    payload = read_page((tmp_path / "s.html").read_text(encoding="utf-8"))
    track = payload["spans"]
    assert track is not None
    assert track["aligned"] is True  # recorded in the same process: one clock
    assert track["total"] == 2 and track["outside"] == 0
    assert set(track["names"]) == {"phase_alpha", "phase_beta"}
    spans = {track["names"][row[4]]: row for row in track["spans"]}
    span_ns = payload["timeline"]["span_ns"]
    for row in spans.values():
        assert 0 <= row[2] <= row[3] <= span_ns, (row, span_ns)
    assert spans["phase_alpha"][3] <= spans["phase_beta"][2]  # alpha's phase ran first
    assert spans["phase_alpha"][3] - spans["phase_alpha"][2] >= 0.09e9  # wall time >= its 0.1 s of CPU
    own, _ = payload_weights(payload)
    assert own["alpha"] > own["beta"] > 0

    # The same spans go into a Chrome trace beside the samples.
    args = ["perf-report", "traced.aprof", "--spans", "trace.json", "--format", "chrome-trace"]
    result = aether([*args, "-o", "c.json"], tmp_path)
    assert result.returncode == 0, describe(result)
    events = json.loads((tmp_path / "c.json").read_text())["traceEvents"]
    names = {event.get("name") for event in events if event.get("ph") == "X"}
    assert {"phase_alpha", "phase_beta", "alpha", "beta"} <= names


def test_spans_from_a_file_that_is_not_json(traced: Path, tmp_path: Path) -> None:
    shutil.copy(traced / "traced.aprof", tmp_path / "traced.aprof")
    (tmp_path / "notes.txt").write_text("these are not the spans you are looking for\n")
    for spans in ("notes.txt", "traced.aprof"):
        args = ["perf-report", "traced.aprof", "--format", "html", "--spans", spans, "-o", "s.html"]
        line = assert_one_line_error(aether(args, tmp_path))
        assert spans in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "traced.aprof"]


def test_spans_need_html_or_chrome_trace(traced: Path, tmp_path: Path) -> None:
    for name in ("traced.aprof", "trace.json"):
        shutil.copy(traced / name, tmp_path / name)
    for extra in ([], ["--format", "text"], ["--format", "svg"]):
        result = aether(["perf-report", "traced.aprof", "--spans", "trace.json", *extra], tmp_path)
        line = assert_one_line_error(result)
        assert "--spans" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trace.json", "traced.aprof"]


@pytest.mark.parametrize(
    ("spans", "options"),
    [
        ("traced.trace.json", ["--format", "chrome-trace"]),  # the default output name is the spans file
        ("trace.json", ["--format", "chrome-trace", "-o", "trace.json"]),
        ("trace.json", ["--format", "html", "-o", "trace.json"]),
    ],
)
def test_spans_file_is_never_overwritten(
    traced: Path, tmp_path: Path, spans: str, options: list[str]
) -> None:
    shutil.copy(traced / "traced.aprof", tmp_path / "traced.aprof")
    shutil.copy(traced / "trace.json", tmp_path / spans)
    before = (tmp_path / spans).read_bytes()
    result = aether(["perf-report", "traced.aprof", "--spans", spans, *options], tmp_path)
    assert (tmp_path / spans).read_bytes() == before, "the --spans input was rewritten"
    line = assert_one_line_error(result)
    assert spans in line
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([spans, "traced.aprof"])


# -- profile --push --------------------------------------------------------------------------------


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass
class FakePyroscope:
    """An HTTP server on 127.0.0.1 that records every request and answers `status`."""

    url: str
    status: int = 200
    answer: bytes = b""
    requests: list[Received] = field(default_factory=list)


@pytest.fixture
def pyroscope() -> Iterator[FakePyroscope]:
    state: FakePyroscope

    class Handler(http.server.BaseHTTPRequestHandler):
        def _record(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            split = urllib.parse.urlsplit(self.path)
            state.requests.append(
                Received(
                    self.command,
                    split.path,
                    urllib.parse.parse_qs(split.query, keep_blank_values=True),
                    {key.lower(): value for key, value in self.headers.items()},
                    body,
                )
            )
            self.send_response(state.status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(state.answer)))
            self.end_headers()
            self.wfile.write(state.answer)

        do_POST = do_GET = do_PUT = _record

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    host, port = server.server_address[:2]
    state = FakePyroscope(url=f"http://{host}:{port}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def push_options(spelling: str, url: str, *, label: str = "env=test") -> list[str]:
    """--push URL --app-name myapp --label LABEL, as separate words or each joined with '='."""
    pairs = [("--push", url), ("--app-name", "myapp"), ("--label", label)]
    if spelling == "joined":
        return [f"{option}={value}" for option, value in pairs]
    return [word for pair in pairs for word in pair]


SPELLINGS = ["separate", "joined"]  # `--push URL` (as in --help and the README) and `--push=URL`


def multipart_parts(content_type: str, body: bytes) -> dict[str, bytes]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    assert message.is_multipart(), content_type
    parts: dict[str, bytes] = {}
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        parts[str(name)] = part.get_payload(decode=True)
    return parts


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_push_uploads_the_profile(pyroscope: FakePyroscope, tmp_path: Path, spelling: str) -> None:
    write(tmp_path / "script.py", PUSH_SCRIPT)
    began = time.time()
    args = ["profile", *push_options(spelling, pyroscope.url), "-o", "run.aprof", "--", "script.py"]
    result = aether(args, tmp_path)
    assert result.returncode == 3, describe(result)  # the script's own status
    assert result.stdout == "target done\n"
    assert f"aether: pushed to {pyroscope.url}" in result.stderr, result.stderr
    assert (tmp_path / "ran.marker").exists()
    profile = load(tmp_path / "run.aprof")  # the file is written as without --push

    assert len(pyroscope.requests) == 1, pyroscope.requests
    [request] = pyroscope.requests
    assert (request.method, request.path) == ("POST", "/ingest")
    query = {key: values[0] for key, values in request.query.items()}
    assert all(len(values) == 1 for values in request.query.values()), request.query
    assert query["name"] == "myapp{env=test}"
    assert query["spyName"] == "aether"
    assert int(query["sampleRate"]) == 1000  # the default 1 ms interval
    first, until = int(query["from"]), int(query["until"])
    assert began - 5 <= first <= until <= time.time() + 5
    assert "format" not in query  # multipart pprof: the server reads the part named "profile"
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert "authorization" not in request.headers
    parts = multipart_parts(request.headers["content-type"], request.body)
    assert set(parts) == {"profile"}
    assert parts["profile"].startswith(b"\x1f\x8b")
    pushed = pprof.from_bytes(parts["profile"])
    assert abs(total_weight(pushed) - total_weight(profile)) <= len(profile)
    assert self_weights(pushed).get("alpha", 0) > 0.5 * total_weight(pushed)


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_push_refused_by_the_server(pyroscope: FakePyroscope, tmp_path: Path, spelling: str) -> None:
    pyroscope.status = 400
    pyroscope.answer = b'{"message": "bad profile name"}'
    write(tmp_path / "script.py", PUSH_SCRIPT)
    args = ["profile", "-q", *push_options(spelling, pyroscope.url), "-o", "run.aprof", "--", "script.py"]
    result = aether(args, tmp_path)
    line = assert_one_line_error(result, status=1)
    assert "400" in line and pyroscope.url in line, line
    assert "bad profile name" in line
    assert result.stdout == "target done\n"
    load(tmp_path / "run.aprof")  # written before the upload: a refused upload loses nothing
    assert len(pyroscope.requests) == 1  # a 4xx is not retried


def test_push_folded_with_the_default_app_name_and_a_token(pyroscope: FakePyroscope, tmp_path: Path) -> None:
    write(tmp_path / "script.py", PUSH_SCRIPT)
    options = [f"--push={pyroscope.url}", "--push-format=folded", "--label=env=test"]
    env = {**ENV, "AETHER_PUSH_TOKEN": "s3cret"}
    result = aether(["profile", "-q", *options, "-o", "run.aprof", "script.py"], tmp_path, env=env)
    assert result.returncode == 3, describe(result)
    [request] = pyroscope.requests
    query = {key: values[0] for key, values in request.query.items()}
    # The app name defaults to the script's stem; folded names end with the profile type.
    assert query["name"] == "script.cpu{env=test}" and query["format"] == "folded"
    assert query["sampleRate"] == "1000000"  # folded values are microseconds
    assert request.headers["authorization"] == "Bearer s3cret"
    assert request.headers["content-type"].startswith("text/plain")
    lines = request.body.decode().splitlines()
    assert lines and all(re.fullmatch(r".+ \d+", line) for line in lines), lines
    micros = {line.rsplit(" ", 1)[0]: int(line.rsplit(" ", 1)[1]) for line in lines}
    alpha = sum(value for stack, value in micros.items() if stack.split(";")[-1].startswith("alpha"))
    assert abs(sum(micros.values()) - total_weight(load(tmp_path / "run.aprof")) / 1000) <= len(micros)
    assert alpha > 0.5 * sum(micros.values())


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_push_label_without_equals_is_refused_before_the_run(
    pyroscope: FakePyroscope, tmp_path: Path, spelling: str
) -> None:
    write(tmp_path / "script.py", PUSH_SCRIPT)
    options = push_options(spelling, pyroscope.url, label="bad")
    result = aether(["profile", *options, "-o", "run.aprof", "--", "script.py"], tmp_path)
    line = assert_one_line_error(result)
    assert "--label" in line and "KEY=VALUE" in line, line
    assert not (tmp_path / "ran.marker").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["script.py"]
    assert pyroscope.requests == []


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_push_options_without_push_are_refused(tmp_path: Path, spelling: str) -> None:
    write(tmp_path / "script.py", PUSH_SCRIPT)
    for option, value in (("--app-name", "myapp"), ("--label", "env=test")):
        words = [f"{option}={value}"] if spelling == "joined" else [option, value]
        result = aether(["profile", *words, "-o", "run.aprof", "--", "script.py"], tmp_path)
        line = assert_one_line_error(result)
        assert "--push" in line, line
        assert not (tmp_path / "ran.marker").exists()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["script.py"]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.1/",
        "{server}/?tenant=x",
        "{server}#part",
        "http://",
        "http://127.0.0.1:notaport",
    ],
)
def test_push_bad_url_is_refused_before_the_run(pyroscope: FakePyroscope, tmp_path: Path, url: str) -> None:
    write(tmp_path / "script.py", PUSH_SCRIPT)
    options = [f"--push={url.format(server=pyroscope.url)}", "--app-name=myapp"]
    result = aether(["profile", "-q", *options, "-o", "run.aprof", "--", "script.py"], tmp_path)
    assert_one_line_error(result)
    assert not (tmp_path / "ran.marker").exists(), "the target ran before --push was checked"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["script.py"]
    assert pyroscope.requests == []
