"""The /debug/pprof endpoint, exercised with real HTTP clients (urllib; ``go tool pprof`` when Go
is installed) on 127.0.0.1 while a thread of this process burns CPU in a known function."""

from __future__ import annotations

import gzip
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from aether_perf import InvalidArgument, RunFailed
from aether_perf.export import pprof
from aether_perf.export.proto import profile_pb2

from aether_native import Sampler
from aether_native.pprof_server import PROFILE_PATH, PprofServer, serve_pprof


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests go straight to 127.0.0.1, whatever proxy the environment names."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def pprof_endpoint_burner(stop: threading.Event) -> None:
    """Burns CPU in its own body until told to stop (a leaf: only C calls below it)."""
    x = 0
    while not stop.is_set():
        for i in range(2000):
            x += i * i


def pprof_endpoint_sleeper(stop: threading.Event) -> None:
    while not stop.is_set():
        stop.wait(0.01)


@pytest.fixture
def burner() -> Iterator[threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=pprof_endpoint_burner, args=(stop,), name="burner-thread")
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join()


@pytest.fixture
def server() -> Iterator[PprofServer]:
    with serve_pprof() as running:
        yield running


def get(url: str, timeout: float = 30.0) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body, for any status."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def decode(data: bytes) -> profile_pb2.Profile:
    message = profile_pb2.Profile()
    message.ParseFromString(gzip.decompress(data))
    return message


def leaf_weights(message: profile_pb2.Profile) -> dict[str, int]:
    """Summed time value per leaf function name."""
    table = list(message.string_table)
    functions = {f.id: table[f.name] for f in message.function}
    leaf = {loc.id: functions[loc.line[0].function_id] for loc in message.location}
    weights: dict[str, int] = {}
    for sample in message.sample:
        name = leaf[sample.location_id[0]] if sample.location_id else "<none>"
        weights[name] = weights.get(name, 0) + sample.value[1]
    return weights


def wait_until(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


# -- the profile -----------------------------------------------------------------------------------


def test_profile_names_the_burning_function(server: PprofServer, burner: threading.Thread) -> None:
    before = time.time()
    status, headers, data = get(server.profile_url + "?seconds=1")
    assert status == 200
    assert headers["content-type"] == "application/octet-stream"
    assert headers["content-disposition"] == 'attachment; filename="profile.pb.gz"'
    assert int(headers["content-length"]) == len(data)
    message = decode(data)
    table = list(message.string_table)
    assert [(table[t.type], table[t.unit]) for t in message.sample_type] == [
        ("samples", "count"),
        ("cpu", "nanoseconds"),
    ]
    assert message.period == 1_000_000
    assert 0.9e9 <= message.duration_nanos <= 3e9
    assert before - 1 <= message.time_nanos / 1e9 <= time.time()
    weights = leaf_weights(message)
    total = sum(weights.values())
    assert weights.get("pprof_endpoint_burner", 0) >= 0.7 * total, weights
    # The burner thread is labelled with its name; the server's own threads are not sampled.
    names = {
        table[label.str] for s in message.sample for label in s.label if table[label.key] == "thread_name"
    }
    assert "burner-thread" in names
    functions = {table[f.name] for f in message.function}
    assert not functions & {"serve_forever", "_profile", "do_GET"}
    # And it reads back as a Profile.
    profile = pprof.from_bytes(data)
    assert profile.meta.mode == "cpu" and profile.top_functions(1)[0].function == "pprof_endpoint_burner"


def test_wall_mode_and_duration_units(burner: threading.Thread) -> None:
    stop = threading.Event()
    sleeper = threading.Thread(target=pprof_endpoint_sleeper, args=(stop,), name="sleeper-thread")
    sleeper.start()
    try:
        with serve_pprof(mode="wall", interval="2ms") as server:
            status, _, data = get(server.profile_url + "?seconds=500ms")
    finally:
        stop.set()
        sleeper.join()
    assert status == 200
    message = decode(data)
    table = list(message.string_table)
    assert table[message.sample_type[1].type] == "wall" and message.period == 2_000_000
    assert 0.45e9 <= message.duration_nanos <= 2e9
    functions = {table[f.name] for f in message.function}
    assert {"pprof_endpoint_burner", "pprof_endpoint_sleeper"} <= functions
    # Wall mode samples idle threads too, but never the server's own.
    assert not functions & {"serve_forever", "_profile", "do_GET"}


@pytest.mark.parametrize("value", ["0", "-1", "abc", "601", "nan", "inf", "", "1e400", "10x"])
def test_bad_seconds_get_400(server: PprofServer, value: str) -> None:
    status, headers, body = get(server.profile_url + "?seconds=" + urllib.parse.quote(value))
    assert status == 400
    assert headers["content-type"] == "text/plain; charset=utf-8"
    text = body.decode()
    assert text.startswith("seconds must be") and text.count("\n") == 1
    assert not server.busy


def test_max_seconds_is_configurable() -> None:
    with serve_pprof(max_seconds=2) as server:
        status, _, body = get(server.profile_url + "?seconds=3")
    assert status == 400 and b"at most 2s" in body


def test_a_concurrent_request_gets_409(server: PprofServer) -> None:
    first: list[int] = []
    thread = threading.Thread(target=lambda: first.append(get(server.profile_url + "?seconds=1.5")[0]))
    thread.start()
    wait_until(lambda: server.busy)
    status, headers, body = get(server.profile_url + "?seconds=1")
    assert status == 409
    assert 1 <= int(headers["retry-after"]) <= 2
    assert b"already being recorded" in body
    thread.join()
    assert first == [200]
    assert not server.busy
    assert get(server.profile_url + "?seconds=0.2")[0] == 200  # free again


def test_a_running_sampler_gets_409(server: PprofServer) -> None:
    with Sampler():
        status, _, body = get(server.profile_url + "?seconds=1")
    assert status == 409 and b"cannot record" in body and b"another Sampler" in body
    assert not server.busy


def test_index_404_and_405(server: PprofServer) -> None:
    for path in ("/debug/pprof/", "/debug/pprof"):
        status, headers, body = get(server.url + path)
        assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
        assert b'href="profile?seconds=30"' in body and PROFILE_PATH.encode() in body
    assert get(server.url + "/debug/pprof/heap")[0] == 404
    request = urllib.request.Request(server.profile_url, data=b"", method="POST")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 405 and info.value.headers["Allow"] == "GET"


def test_a_client_that_hangs_up_frees_the_recorder(server: PprofServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(f"GET {PROFILE_PATH}?seconds=60 HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        wait_until(lambda: server.busy)
    start = time.monotonic()
    wait_until(lambda: not server.busy, timeout=5)
    assert time.monotonic() - start < 2


def test_close_stops_the_server_and_a_recording() -> None:
    server = serve_pprof()
    url = server.profile_url
    answers: list[int] = []

    def fetch() -> None:
        try:
            answers.append(get(url)[0])  # no seconds: the default 30 s
        except (urllib.error.URLError, ConnectionError) as exc:
            answers.append(-1 if exc else 0)

    thread = threading.Thread(target=fetch)
    thread.start()
    wait_until(lambda: server.busy)
    start = time.monotonic()
    server.close()
    assert time.monotonic() - start < 3
    thread.join(5)
    assert answers == [503]
    assert server.closed and not server.busy
    assert not server._thread.is_alive()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(server.url + "/debug/pprof/", timeout=5)
    server.close()  # again: nothing happens
    with Sampler():  # the recorder was stopped
        pass


def test_bad_arguments() -> None:
    for kwargs, message in [
        ({"port": -1}, "port must be"),
        ({"port": 70000}, "port must be"),
        ({"port": True}, "port must be"),
        ({"host": ""}, "host must be"),
        ({"mode": "heap"}, "mode must be"),
        ({"interval": "0"}, "interval must be"),
        ({"max_seconds": 0}, "max_seconds must be"),
    ]:
        with pytest.raises(InvalidArgument, match=message):
            serve_pprof(**kwargs)  # type: ignore[arg-type]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RunFailed, match=f"cannot serve pprof on 127.0.0.1:{port}: "):
            serve_pprof(port)


@pytest.mark.skipif(shutil.which("go") is None, reason="go (Debian golang-go) is not installed")
def test_go_tool_pprof_scrapes_it(server: PprofServer, burner: threading.Thread, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(HOME=str(tmp_path), PPROF_TMPDIR=str(tmp_path))
    result = subprocess.run(
        ["go", "tool", "pprof", "-top", "-seconds", "1", server.profile_url],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "Type: cpu" in result.stdout
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if "flat%" in line)
    assert lines[header + 1].split()[-1] == "pprof_endpoint_burner", result.stdout  # the heaviest
