"""Upload a Profile to a Grafana Pyroscope server through its HTTP ingest API, ``POST /ingest``.

What is sent, and where each rule comes from (the Pyroscope documentation, "Pyroscope server HTTP
API", docs/sources/configure-server/about-server-api.md in grafana/pyroscope; its ingest handler,
pkg/ingester/pyroscope/ingest_handler.go and ingest_adapter.go; its pprof form reader,
pkg/og/convert/pprof/profile.go; its label-set parser, api/model/labelset/{labelset,validate}.go;
and its clients: the Go client's upstream/remote/remote.go in grafana/pyroscope-go, and
pyroscope-rs's session upload, which the Python agent uses):

- ``POST {url}/ingest`` with the query parameters ``name``, ``from`` and ``until`` (Unix seconds,
  whole), ``sampleRate`` (Hz), ``spyName`` (``aether``), ``units`` (``samples``) and
  ``aggregationType`` (``sum``): the names the handler reads (the docs' table misspells the last
  one as ``aggregrationType``; the handler and every client use ``aggregationType``).
- ``format="pprof"`` (the default): the body is ``multipart/form-data`` with one file part named
  ``profile`` (filename ``profile.pprof``, ``application/octet-stream``) holding the gzipped pprof
  of :mod:`aether_perf.export.pprof`, as the Go client sends it. No ``format`` query parameter
  then: the handler reads a multipart body as pprof only when ``format`` is absent (with
  ``format=pprof`` it takes the raw body as the profile, and would fail on the multipart
  envelope). The server ignores units/aggregationType/sampleRate for pprof and names the series
  from the sample types (``cpu`` -> ``process_cpu``, ``wall`` -> ``wall``); ``name`` is the
  service name.
- ``format="folded"``: ``format=folded`` and a ``text/plain`` body of lines ``a;b;c N`` (root
  first, :func:`aether_perf.export.collapsed.collapse`), ``N`` the stack's weight in
  microseconds, so ``sampleRate`` is ``1000000``: the server scales each value by
  ``1e9 / sampleRate`` ns and so gets the real CPU (or wall) time whatever the sampler's rate.
  Pyroscope takes the last dot-separated part of a folded profile's name as its type, so the
  name is ``{app_name}.cpu`` (``.wall`` for a wall-mode profile) followed by the labels.
- ``name`` is ``app{k1=v1,k2=v2}`` with the labels sorted by key. The label-set syntax has no
  escaping, so names and values are checked instead (:class:`InvalidArgument` before any network
  use): the application name may hold ``A-Z a-z 0-9 _ . - /``; a label name ``A-Z a-z 0-9 _ .``,
  not starting with ``__`` (reserved); a label value anything but ``, { }``, control characters
  and surrounding spaces (the parser would split or trim it). The query string itself is
  percent-encoded (``{`` ``}`` ``=`` ``,`` spaces and non-ASCII arrive intact).
- ``Authorization: Bearer <auth_token>`` when a token is given (the Go client's header); a URL
  with ``user:password@`` sends HTTP Basic credentials instead (Grafana Cloud); ``tenant_id`` sets
  ``X-Scope-OrgID`` for a multi-tenant server. Redirects are not followed (a POST must not turn
  into a GET, nor credentials go to another host).

Failures: connection errors, timeouts, HTTP 5xx and 429 are retried ``retries`` times with
exponential backoff (``backoff``, doubled each time, at least a ``Retry-After`` of up to 30 s);
any other 4xx is not retried. Both end in :class:`PushError`, one line naming the server, the
HTTP status and the server's message.
"""

from __future__ import annotations

import base64
import http.client
import importlib.metadata
import json
import math
import re
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from typing import TYPE_CHECKING, Literal

from aether_perf.errors import InvalidArgument, RunFailed

if TYPE_CHECKING:
    from aether_perf.model.profile import Profile

__all__ = [
    "FOLDED_SAMPLE_RATE",
    "SPY_NAME",
    "PushError",
    "PushResult",
    "check_url",
    "ingest_name",
    "push",
]

#: The ``spyName`` we report.
SPY_NAME = "aether"
#: Folded values are microseconds, so the "sample rate" that turns them into time is 1 MHz.
FOLDED_SAMPLE_RATE = 1_000_000
#: The most a Retry-After header may make us wait between two attempts.
MAX_RETRY_AFTER = 30.0
MAX_RETRIES = 20
FORMATS = ("pprof", "folded")

_APP_NAME = re.compile(r"[A-Za-z0-9_.\-/]+")
_LABEL_NAME = re.compile(r"[A-Za-z0-9_.]+")
_BAD_VALUE = re.compile(r"[,{}\x00-\x1f\x7f]")


class PushError(RunFailed):
    """The server refused the profile, or could not be reached after the retries.

    ``status`` is the last HTTP status (None when no response came), ``attempts`` how many
    requests were made, ``server_message`` what the server said (may be empty).
    """

    def __init__(
        self, message: str, *, status: int | None = None, attempts: int = 0, server_message: str = ""
    ) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts
        self.server_message = server_message


@dataclass(frozen=True)
class PushResult:
    """A successful upload: the request URL (no credentials), the HTTP status, the number of
    attempts it took, the body format and size, and the server's answer (at most 1000 characters)."""

    url: str
    status: int
    attempts: int
    format: str
    bytes_sent: int
    response: str


# -- validation ---------------------------------------------------------------------------------


def _check_app_name(app_name: object) -> str:
    if not isinstance(app_name, str) or not _APP_NAME.fullmatch(app_name):
        raise InvalidArgument(
            f"app_name must be letters, digits and _ . - / (Pyroscope's service-name characters), "
            f"got {app_name!r}"
        )
    return app_name


def _check_labels(labels: Mapping[str, object] | None) -> dict[str, str]:
    if labels is None:
        return {}
    if not isinstance(labels, Mapping):
        raise InvalidArgument(f"labels must be a mapping of names to values, got {type(labels).__name__}")
    checked: dict[str, str] = {}
    for name, value in labels.items():
        if not isinstance(name, str) or not _LABEL_NAME.fullmatch(name):
            raise InvalidArgument(
                f"label name {name!r} must be letters, digits, _ and . (Pyroscope's label-name characters)"
            )
        if name.startswith("__"):
            raise InvalidArgument(f"label name {name!r} is reserved (names starting with __ are Pyroscope's)")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise InvalidArgument(f"label {name} must have a string value, got {type(value).__name__}")
        text = str(value)
        bad = _BAD_VALUE.search(text)
        if not text or text != text.strip() or bad:
            why = (
                f"contains {bad.group()!r}"
                if bad
                else ("is empty" if not text else "starts or ends with whitespace")
            )
            raise InvalidArgument(
                f"label {name}={text!r} {why}: Pyroscope's name{{k=v,...}} syntax has no escaping, "
                "so values cannot hold , { } or control characters, be empty or have surrounding spaces"
            )
        checked[name] = text
    return checked


def _number(value: object, name: str, *, minimum: float, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgument(f"{name} must be a finite number, got {value!r}")
    if value < minimum or (not allow_zero and value == 0):
        raise InvalidArgument(
            f"{name} must be {'at least' if allow_zero else 'above'} {minimum:g}, got {value!r}"
        )
    return float(value)


@dataclass(frozen=True)
class _Target:
    base: str  # scheme://host[:port][/path], no credentials: for messages
    ingest: str  # base + /ingest
    basic_auth: str | None


def check_url(url: object) -> None:
    """Raise InvalidArgument unless ``url`` is a usable Pyroscope server URL (checked offline)."""
    _check_url(url)


def _check_url(url: object) -> _Target:
    if not isinstance(url, str):
        raise InvalidArgument(f"url must be a string such as 'http://localhost:4040', got {url!r}")
    try:
        parts = urllib.parse.urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise InvalidArgument(f"url {url!r} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgument(
            f"url must be the Pyroscope server's http:// or https:// address such as "
            f"'http://localhost:4040', got {url!r}"
        )
    if parts.query or parts.fragment:
        raise InvalidArgument(f"url must not have a query or a fragment, got {url!r}")
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    path = parts.path.rstrip("/")
    base = urllib.parse.urlunsplit((parts.scheme, netloc, path, "", ""))
    basic = None
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return _Target(base=base, ingest=base + "/ingest", basic_auth=basic)


def ingest_name(app_name: str, labels: Mapping[str, object] | None = None, *, suffix: str = "") -> str:
    """The ``name`` query parameter: ``app_name + suffix``, then ``{k=v,...}`` sorted by key when
    there are labels. Raises InvalidArgument for names or values Pyroscope cannot take."""
    name = _check_app_name(app_name) + suffix
    checked = _check_labels(labels)
    if not checked:
        return name
    return name + "{" + ",".join(f"{k}={checked[k]}" for k in sorted(checked)) + "}"


# -- the request --------------------------------------------------------------------------------


def _user_agent() -> str:
    try:
        return f"aether-native/{importlib.metadata.version('aether-native')}"
    except importlib.metadata.PackageNotFoundError:
        return "aether-native"


def _time_range(profile: Profile) -> tuple[int, int]:
    start = profile.meta.start_time
    duration = max(profile.meta.duration, 0.0)
    if start <= 0:  # a profile that does not know when it ran: say it just ended
        start = time.time() - duration
    first = math.floor(start)
    return first, max(first, math.ceil(start + duration))


def _multipart(fields: list[tuple[str, str, str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body of file parts ``(name, filename, content type, data)``."""
    while True:
        boundary = "aether-" + secrets.token_hex(16)
        marker = boundary.encode("ascii")
        if not any(marker in data for *_, data in fields):
            break
    chunks: list[bytes] = []
    for name, filename, content_type, data in fields:
        chunks.append(
            (
                f"--{boundary}\r\n"
                f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                f"Content-Type: {content_type}\r\n\r\n"
            ).encode("ascii")
        )
        chunks.append(data)
        chunks.append(b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def _body(profile: Profile, fmt: str) -> tuple[bytes, str]:
    if fmt == "pprof":
        from aether_perf.export import pprof

        return _multipart([("profile", "profile.pprof", "application/octet-stream", pprof.to_bytes(profile))])
    from aether_perf.export.collapsed import collapse

    text = "".join(f"{stack} {number}\n" for stack, number in collapse(profile, value="weight"))
    return text.encode("utf-8"), "text/plain; charset=utf-8"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: object,
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> None:
        return None


def _server_message(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        for key in ("message", "error", "msg"):
            if isinstance(parsed.get(key), str):
                text = parsed[key]
                break
    text = " ".join(text.split())
    return text if len(text) <= 300 else text[:297] + "..."


def _retry_after(headers: Message[str, str] | None) -> float:
    value = headers.get("Retry-After", "") if headers is not None else ""
    try:
        seconds = float(value)
    except ValueError:
        return 0.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER) if math.isfinite(seconds) else 0.0


def push(
    profile: Profile,
    url: str,
    *,
    app_name: str,
    labels: Mapping[str, object] | None = None,
    timeout: float = 10.0,
    retries: int = 3,
    backoff: float = 0.5,
    format: Literal["pprof", "folded"] = "pprof",
    auth_token: str | None = None,
    tenant_id: str | None = None,
) -> PushResult:
    """Upload ``profile`` to the Pyroscope server at ``url`` (see the module doc for the request).

    ``app_name`` is the service name and ``labels`` its extra labels (``{"env": "staging"}``);
    ``timeout`` is per attempt, in seconds; ``retries`` is how many times a connection error,
    timeout, 5xx or 429 is retried, waiting ``backoff`` seconds doubled each time. Everything is
    checked (InvalidArgument) before the first request. Returns a :class:`PushResult`; raises
    :class:`PushError` when the server refuses the profile or cannot be reached.
    """
    target = _check_url(url)
    if format not in FORMATS:
        raise InvalidArgument(f"format must be 'pprof' or 'folded', got {format!r}")
    kind = "wall" if profile.meta.mode == "wall" else "cpu"
    app_name = _check_app_name(app_name)
    suffix = "" if format == "pprof" or app_name.endswith(f".{kind}") else f".{kind}"
    name = ingest_name(app_name, labels, suffix=suffix)
    timeout = _number(timeout, "timeout", minimum=0.0, allow_zero=False)
    backoff = _number(backoff, "backoff", minimum=0.0, allow_zero=True)
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= MAX_RETRIES:
        raise InvalidArgument(f"retries must be an integer from 0 to {MAX_RETRIES}, got {retries!r}")
    headers = {"User-Agent": _user_agent()}
    for header, value in (("auth_token", auth_token), ("tenant_id", tenant_id)):
        if value is not None and (not isinstance(value, str) or not value or _BAD_VALUE.search(value)):
            raise InvalidArgument(f"{header} must be a non-empty string without control characters")
    if auth_token is not None and target.basic_auth is not None:
        raise InvalidArgument("give either auth_token or user:password@ in the url, not both")
    if auth_token is not None:
        headers["Authorization"] = f"Bearer {auth_token}"
    elif target.basic_auth is not None:
        headers["Authorization"] = target.basic_auth
    if tenant_id is not None:
        headers["X-Scope-OrgID"] = tenant_id

    start, until = _time_range(profile)
    interval = profile.meta.interval
    rate = (
        FOLDED_SAMPLE_RATE if format == "folded" else (max(1, round(1 / interval)) if interval > 0 else 100)
    )
    query = [
        ("name", name),
        ("from", str(start)),
        ("until", str(until)),
        ("sampleRate", str(rate)),
        ("spyName", SPY_NAME),
        ("units", "samples"),
        ("aggregationType", "sum"),
    ]
    if format == "folded":
        query.append(("format", "folded"))
    full_url = target.ingest + "?" + urllib.parse.urlencode(query)
    body, content_type = _body(profile, format)
    headers["Content-Type"] = content_type
    return _send(full_url, target.base, body, headers, format, timeout, retries, backoff)


def _send(
    url: str,
    base: str,
    body: bytes,
    headers: dict[str, str],
    fmt: str,
    timeout: float,
    retries: int,
    backoff: float,
) -> PushResult:
    opener = urllib.request.build_opener(_NoRedirect)
    attempts = 0
    last: PushError | None = None
    while True:
        attempts += 1
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        wait = 0.0
        try:
            with opener.open(request, timeout=timeout) as response:
                answer = response.read(1 << 20)
                status = int(response.status)
            return PushResult(
                url=url,
                status=status,
                attempts=attempts,
                format=fmt,
                bytes_sent=len(body),
                response=answer.decode("utf-8", "replace")[:1000],
            )
        except urllib.error.HTTPError as exc:
            try:
                said = _server_message(exc.read(1 << 16))
            except (OSError, http.client.HTTPException):
                said = ""
            status = exc.code
            what = f"HTTP {status} {exc.reason}" + (f": {said}" if said else "")
            if 300 <= status < 400:
                where = exc.headers.get("Location", "") if exc.headers is not None else ""
                raise PushError(
                    f"Pyroscope at {base} redirected the upload ({what})"
                    + (f" to {where}; use that address" if where else ""),
                    status=status,
                    attempts=attempts,
                    server_message=said,
                ) from None
            if status != 429 and not 500 <= status <= 599:
                raise PushError(
                    f"Pyroscope at {base} refused the profile: {what}",
                    status=status,
                    attempts=attempts,
                    server_message=said,
                ) from None
            last = PushError(
                f"Pyroscope at {base} failed after {attempts} attempt{'s' if attempts > 1 else ''}: {what}",
                status=status,
                attempts=attempts,
                server_message=said,
            )
            wait = _retry_after(exc.headers)
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            text = " ".join(str(reason).split()) or type(reason).__name__
            tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
            last = PushError(f"cannot reach Pyroscope at {base} after {tries}: {text}", attempts=attempts)
        if attempts > retries:
            raise last
        time.sleep(max(backoff * 2 ** (attempts - 1), wait))
