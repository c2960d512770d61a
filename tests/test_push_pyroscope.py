"""Pyroscope upload: the exact request shape (method, path, every query parameter, headers,
multipart parts, the pprof inside decoding to the profile's numbers), retries, and errors, against a
recording HTTP server on 127.0.0.1 (Pyroscope itself is not packaged here)."""

from __future__ import annotations

import email.parser
import email.policy
import gzip
import socket
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aether_perf import AetherError, Frame, InvalidArgument, Profile, ProfileMeta, RunFailed, ThreadInfo
from aether_perf.export import collapsed, pprof
from aether_perf.export.proto import profile_pb2
from aether_perf.push import PushError, PushResult, push
from aether_perf.push.pyroscope import ingest_name

MS = 1_000_000


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests go straight to 127.0.0.1, whatever proxy the environment names."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


def make_profile(mode: str = "cpu", start: float = 1_790_000_000.25) -> Profile:
    frames = [
        Frame("main", "/srv/app.py", 10, 1),
        Frame("handle", "/srv/app.py", 30, 25),
        Frame("parse", "/srv/parse.py", 5, 3),
        Frame("<module>", "/srv/app.py", 1, 1),
    ]
    return Profile(
        frames,
        [(3, 0, 1, 2), (3, 0, 1), (3, 0)],
        {1: ThreadInfo(1, "MainThread"), 2: ThreadInfo(2, "worker")},
        stack=[0, 0, 1, 2, 0],
        tid=[1, 1, 1, 2, 2],
        time_ns=[1 * MS, 2 * MS, 3 * MS, 4 * MS, 5 * MS],
        weight_ns=[3 * MS, 2 * MS, 1 * MS + 400_000, 7 * MS, 250_000],
        flags=[0, 0, 0, 0, 0],
        meta=ProfileMeta(mode, 0.001, start, 10.5, "3.11.7", 5, 0, "app.py"),
    )


# -- the recording server -----------------------------------------------------------------------


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes

    @property
    def url_path(self) -> str:
        return urllib.parse.urlsplit(self.path).path

    @property
    def query(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query, keep_blank_values=True)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Recorder:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.replies: deque[Reply] = deque()
        self.url = ""


@pytest.fixture
def server() -> Iterator[Recorder]:
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            headers = {name.lower(): value for name, value in self.headers.items()}
            recorder.requests.append(Recorded(self.command, self.path, headers, body))
            reply = recorder.replies.popleft() if recorder.replies else Reply()
            if reply.delay:
                time.sleep(reply.delay)
            try:
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except OSError:  # the client gave up (timeout test)
                pass

        do_GET = do_POST

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    recorder.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield recorder
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def parts_of(request: Recorded) -> list[email.message.EmailMessage]:
    """The multipart/form-data parts, parsed by the standard library's MIME parser."""
    raw = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode() + request.body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    assert message.is_multipart()
    return list(message.iter_parts())  # type: ignore[attr-defined]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- request shape --------------------------------------------------------------------------------


def test_pprof_request_shape(server: Recorder) -> None:
    profile = make_profile()
    result = push(profile, server.url, app_name="my.app", labels={"region": "eu-west-1", "env": "staging"})
    assert isinstance(result, PushResult)
    assert (result.status, result.attempts, result.format) == (200, 1, "pprof")
    (request,) = server.requests
    assert request.method == "POST"
    assert request.url_path == "/ingest"
    assert request.query == {
        "name": ["my.app{env=staging,region=eu-west-1}"],  # labels sorted by name
        "from": ["1790000000"],  # floor(start)
        "until": ["1790000011"],  # ceil(start + 10.5 s)
        "sampleRate": ["1000"],  # 1 / interval
        "spyName": ["aether"],
        "units": ["samples"],
        "aggregationType": ["sum"],
    }  # and no "format": a multipart body is read as pprof only without it
    assert result.url == server.url + request.path
    content_type = request.headers["content-type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    assert request.headers["user-agent"].startswith("aether-native")
    assert "authorization" not in request.headers and "x-scope-orgid" not in request.headers
    assert result.bytes_sent == len(request.body) == int(request.headers["content-length"])

    (part,) = parts_of(request)
    assert part.get_param("name", header="content-disposition") == "profile"
    assert part.get_filename() == "profile.pprof"
    assert part.get_content_type() == "application/octet-stream"
    data = part.get_payload(decode=True)
    assert isinstance(data, bytes)
    assert data == pprof.to_bytes(profile)
    message = profile_pb2.Profile()
    message.ParseFromString(gzip.decompress(data))
    table = list(message.string_table)
    assert [(table[t.type], table[t.unit]) for t in message.sample_type] == [
        ("samples", "count"),
        ("cpu", "nanoseconds"),
    ]
    assert sum(s.value[0] for s in message.sample) == 5
    assert sum(s.value[1] for s in message.sample) == profile.total_weight_ns == 13_650_000
    assert message.time_nanos == 1_790_000_000_250_000_000 and message.duration_nanos == 10_500_000_000
    names = {table[f.name] for f in message.function}
    assert names == {"main", "handle", "parse", "<module>"}


@pytest.mark.parametrize("mode", ["cpu", "wall"])
def test_folded_request_shape(server: Recorder, mode: str) -> None:
    profile = make_profile(mode)
    result = push(profile, server.url, app_name="my.app", labels={"env": "staging"}, format="folded")
    assert result.format == "folded"
    (request,) = server.requests
    assert request.url_path == "/ingest"
    assert request.query == {
        # Pyroscope reads the last dot-part of a folded profile's name as its type.
        "name": [f"my.app.{mode}{{env=staging}}"],
        "from": ["1790000000"],
        "until": ["1790000011"],
        "sampleRate": ["1000000"],  # values are microseconds
        "spyName": ["aether"],
        "units": ["samples"],
        "aggregationType": ["sum"],
        "format": ["folded"],
    }
    assert request.headers["content-type"] == "text/plain; charset=utf-8"
    lines = request.body.decode("utf-8").splitlines()
    parsed = [(line.rpartition(" ")[0], int(line.rpartition(" ")[2])) for line in lines]
    assert parsed == collapsed.collapse(profile, value="weight")
    assert dict(parsed) == {
        "<module> (/srv/app.py);main (/srv/app.py);handle (/srv/app.py);parse (/srv/parse.py)": 5250,
        "<module> (/srv/app.py);main (/srv/app.py);handle (/srv/app.py)": 1400,
        "<module> (/srv/app.py);main (/srv/app.py)": 7000,
    }
    # The app name already ending in the type is not doubled.
    push(profile, server.url, app_name=f"svc.{mode}", format="folded")
    assert server.requests[1].query["name"] == [f"svc.{mode}"]


def test_url_with_a_path_auth_and_tenant(server: Recorder) -> None:
    push(make_profile(), server.url + "/pyroscope/", app_name="a", auth_token="s3cret", tenant_id="team-1")
    request = server.requests[0]
    assert request.url_path == "/pyroscope/ingest"
    assert request.headers["authorization"] == "Bearer s3cret"
    assert request.headers["x-scope-orgid"] == "team-1"
    assert request.query["name"] == ["a"]  # no labels, no braces


def test_basic_auth_from_the_url_is_never_shown(server: Recorder) -> None:
    port = server.url.rsplit(":", 1)[1]
    result = push(make_profile(), f"http://user%40x:pa%3Ass@127.0.0.1:{port}", app_name="a")
    assert server.requests[0].headers["authorization"] == "Basic dXNlckB4OnBhOnNz"  # user@x:pa:ss
    assert "pa" not in result.url.split("?")[0] and "user" not in result.url
    server.replies.append(Reply(401, b"unauthorized"))
    with pytest.raises(PushError) as info:
        push(make_profile(), f"http://user:hunter2@127.0.0.1:{port}", app_name="a")
    assert "hunter2" not in str(info.value) and "HTTP 401" in str(info.value)


def test_label_values_are_percent_encoded(server: Recorder) -> None:
    labels = {"host": "web 1/é+&=#%x", "version": "1.2.3", "a.b_C9": "ok"}
    push(make_profile(), server.url, app_name="team/app-1_x", labels=labels)
    (request,) = server.requests
    query = urllib.parse.urlsplit(request.path).query
    assert " " not in query and "é" not in query and "{" not in query and "#" not in query
    assert query.count("&") == 6  # seven parameters: the & in the value is escaped
    assert request.query["name"] == ["team/app-1_x{a.b_C9=ok,host=web 1/é+&=#%x,version=1.2.3}"]
    assert ingest_name("app", {"b": "2", "a": 1}) == "app{a=1,b=2}"


# -- retries and errors ----------------------------------------------------------------------------


def test_503_then_200_is_retried(server: Recorder) -> None:
    server.replies.extend([Reply(503, b"ingester overloaded"), Reply(429, b"slow down"), Reply(200)])
    result = push(make_profile(), server.url, app_name="a", backoff=0.01)
    assert (result.status, result.attempts) == (200, 3)
    assert len(server.requests) == 3
    assert len({(r.path, r.body) for r in server.requests}) == 1  # the same request each time


def test_retry_after_is_honoured(server: Recorder) -> None:
    server.replies.extend([Reply(503, b"busy", {"Retry-After": "0.3"}), Reply(200)])
    start = time.monotonic()
    assert push(make_profile(), server.url, app_name="a", backoff=0.01).attempts == 2
    assert time.monotonic() - start >= 0.3


def test_400_is_not_retried(server: Recorder) -> None:
    server.replies.append(Reply(400, b"invalid service name: \"a b\": character is not allowed: ' '\n"))
    with pytest.raises(PushError) as info:
        push(make_profile(), server.url, app_name="a", backoff=0.01)
    error = info.value
    assert isinstance(error, RunFailed) and isinstance(error, AetherError)
    assert (error.status, error.attempts) == (400, 1)
    assert len(server.requests) == 1
    text = str(error)
    assert "\n" not in text
    assert text.startswith(f"Pyroscope at {server.url} refused the profile: HTTP 400 Bad Request: ")
    assert "invalid service name" in text and "character is not allowed" in error.server_message


def test_json_error_message(server: Recorder) -> None:
    server.replies.append(Reply(422, b'{"code": "invalid_argument", "message": "profile too large"}'))
    with pytest.raises(PushError, match=r"HTTP 422 Unprocessable (Entity|Content): profile too large$"):
        push(make_profile(), server.url, app_name="a")


def test_5xx_until_the_retries_run_out(server: Recorder) -> None:
    server.replies.extend([Reply(500, b"boom")] * 3)
    with pytest.raises(PushError) as info:
        push(make_profile(), server.url, app_name="a", retries=2, backoff=0.01)
    assert (info.value.status, info.value.attempts) == (500, 3)
    assert str(info.value) == (
        f"Pyroscope at {server.url} failed after 3 attempts: HTTP 500 Internal Server Error: boom"
    )
    assert len(server.requests) == 3


def test_connection_refused_is_retried_then_fails() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    start = time.monotonic()
    with pytest.raises(PushError) as info:
        push(make_profile(), url, app_name="a", retries=2, backoff=0.05)
    elapsed = time.monotonic() - start
    assert info.value.attempts == 3 and info.value.status is None
    assert str(info.value).startswith(f"cannot reach Pyroscope at {url} after 3 attempts: ")
    assert "refused" in str(info.value).lower()
    assert elapsed >= 0.05 + 0.1  # backoff doubles between attempts


def test_timeout_is_retried(server: Recorder) -> None:
    server.replies.extend([Reply(200, delay=1.0), Reply(200)])
    result = push(make_profile(), server.url, app_name="a", timeout=0.3, backoff=0.01)
    assert result.attempts == 2


def test_redirects_are_not_followed(server: Recorder) -> None:
    server.replies.append(Reply(307, b"", {"Location": "http://127.0.0.1:1/elsewhere"}))
    with pytest.raises(
        PushError, match=r"redirected the upload \(HTTP 307 .*\) to http://127.0.0.1:1/elsewhere"
    ):
        push(make_profile(), server.url, app_name="a")
    assert len(server.requests) == 1


def test_an_empty_profile_can_be_pushed(server: Recorder) -> None:
    profile = Profile(
        [],
        [],
        {},
        stack=[],
        tid=[],
        time_ns=[],
        weight_ns=[],
        flags=[],
        meta=ProfileMeta("cpu", 0.001, 1_790_000_000.0, 0.0, "3.11.7", 0, 0),
    )
    assert push(profile, server.url, app_name="a", format="folded").bytes_sent == 0
    assert server.requests[0].query["from"] == server.requests[0].query["until"] == ["1790000000"]


BAD_ARGUMENTS: list[tuple[dict[str, object], str]] = [
    ({"app_name": ""}, "app_name must be"),
    ({"app_name": "my app"}, "app_name must be"),
    ({"app_name": "app{x=1}"}, "app_name must be"),
    ({"app_name": None}, "app_name must be"),
    ({"app_name": None, "format": "folded"}, "app_name must be"),
    ({"labels": {"": "x"}}, "label name"),
    ({"labels": {"bad-name": "x"}}, "label name 'bad-name'"),
    ({"labels": {"__name__": "x"}}, "is reserved"),
    ({"labels": {"k=v": "x"}}, "label name"),
    ({"labels": {"k": "a,b"}}, "contains ','"),
    ({"labels": {"k": "a}"}}, "contains '}'"),
    ({"labels": {"k": "{"}}, "contains '{'"),
    ({"labels": {"k": ""}}, "is empty"),
    ({"labels": {"k": " x"}}, "whitespace"),
    ({"labels": {"k": "line\nbreak"}}, "contains '\\n'"),
    ({"labels": {"k": None}}, "must have a string value"),
    ({"labels": {"k": True}}, "must have a string value"),
    ({"labels": ["k", "v"]}, "labels must be a mapping"),
    ({"url": "ftp://127.0.0.1/"}, "http:// or https://"),
    ({"url": "127.0.0.1:4040"}, "http:// or https://"),
    ({"url": "http://"}, "http:// or https://"),
    ({"url": "http://127.0.0.1:4040/?x=1"}, "query or a fragment"),
    ({"url": "http://127.0.0.1:99999"}, "not a valid URL"),
    ({"format": "json"}, "format must be"),
    ({"timeout": 0}, "timeout must be above 0"),
    ({"timeout": float("nan")}, "timeout must be a finite number"),
    ({"retries": -1}, "retries must be"),
    ({"retries": 1.5}, "retries must be"),
    ({"retries": True}, "retries must be"),
    ({"backoff": -1}, "backoff must be at least 0"),
    ({"auth_token": "a\r\nX-Evil: 1"}, "auth_token must be"),
    ({"tenant_id": ""}, "tenant_id must be"),
]


@pytest.mark.parametrize(("changes", "expected"), BAD_ARGUMENTS, ids=[str(c) for c, _ in BAD_ARGUMENTS])
def test_bad_arguments_fail_before_any_request(
    server: Recorder, changes: dict[str, object], expected: str
) -> None:
    arguments: dict[str, object] = {"url": server.url, "app_name": "app", "labels": {"env": "prod"}}
    arguments.update(changes)
    with pytest.raises(InvalidArgument) as info:
        push(make_profile(), **arguments)  # type: ignore[arg-type]
    assert expected in str(info.value)
    assert "\n" not in str(info.value)
    assert server.requests == []
