"""The native ingest wire format and one keep-alive HTTP connection, on the standard library.

The body of ``POST /api/v1/ingest`` is ``{"spans": [...], "metric_points": [...], "runs":
[...]}`` with the fields of ``llmpulse.schema`` (None and empty fields left out: the server
fills the defaults), gzip-compressed. ``http.client`` keeps one connection per thread alive, so
a batch costs one request on an open socket, not a TCP (and TLS) handshake.
"""

from __future__ import annotations

import contextlib
import email.utils
import gzip
import http.client
import json
import re
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from llmpulse._json import compact_json
from llmpulse.errors import ConfigError
from llmpulse.schema import MetricPoint, Run, Span

__all__ = [
    "INGEST_PATH",
    "Body",
    "Connection",
    "Reply",
    "decode_body",
    "encode_body",
    "parse_retry_after",
    "rejected_indexes",
]

INGEST_PATH = "/api/v1/ingest"
MAX_RETRY_AFTER = 300.0  # a Retry-After longer than this is capped (a broken or hostile value)
_GZIP_LEVEL = 1  # JSON of spans shrinks ~6x at level 1; higher levels cost CPU for little more

_SPAN_FIELDS = tuple(Span.__dataclass_fields__)
_RUN_FIELDS = tuple(Run.__dataclass_fields__)


@dataclass(slots=True)
class Body:
    """One request's records as JSON-ready dicts, and how many of them the SDK counts.

    ``uncounted_points`` trailing metric points are the SDK's own drop counters, which ride
    along with a batch but are not records the application made.
    """

    spans: list[dict[str, Any]]
    metric_points: list[dict[str, Any]]
    runs: list[dict[str, Any]]
    uncounted_points: int = 0
    _encoded: bytes | None = None

    @property
    def records(self) -> int:
        """All records in the body."""
        return len(self.spans) + len(self.metric_points) + len(self.runs)

    @property
    def counted(self) -> int:
        """Records the SDK counts (all but the trailing self-metric points)."""
        return self.records - self.uncounted_points

    def encode(self) -> bytes:
        """The gzip-compressed JSON text (computed once)."""
        if self._encoded is not None:
            return self._encoded
        doc: dict[str, Any] = {}
        for key in ("spans", "metric_points", "runs"):
            items = getattr(self, key)
            if items:
                doc[key] = items
        self._encoded = gzip.compress(compact_json(doc).encode("utf-8"), _GZIP_LEVEL, mtime=0)
        return self._encoded

    def halves(self) -> tuple[Body, Body]:
        """Two bodies of about half the records each (for a 413); both non-empty if n > 1."""
        split = len(self.metric_points) - self.uncounted_points
        own_points, self_points = self.metric_points[:split], self.metric_points[split:]
        flat = ([("spans", r) for r in self.spans] + [("metric_points", r) for r in own_points]
                + [("runs", r) for r in self.runs])  # fmt: skip
        middle = (len(flat) + len(self_points)) // 2
        parts = []
        for chunk, extra in ((flat[:middle], self_points[: max(0, middle - len(flat))]),
                             (flat[middle:], self_points[max(0, middle - len(flat)):])):  # fmt: skip
            lists: dict[str, list[dict[str, Any]]] = {"spans": [], "metric_points": [], "runs": []}
            for key, record in chunk:
                lists[key].append(record)
            parts.append(Body(lists["spans"], lists["metric_points"] + extra, lists["runs"],
                              len(extra)))  # fmt: skip
        return parts[0], parts[1]

    @staticmethod
    def merge(bodies: list[Body]) -> Body:
        """One body of all ``bodies``' records (the self-metric points still last)."""
        spans: list[dict[str, Any]] = []
        own: list[dict[str, Any]] = []
        extra: list[dict[str, Any]] = []
        runs: list[dict[str, Any]] = []
        for body in bodies:
            split = len(body.metric_points) - body.uncounted_points
            spans += body.spans
            own += body.metric_points[:split]
            extra += body.metric_points[split:]
            runs += body.runs
        return Body(spans, own + extra, runs, len(extra))

    def without(self, bad: dict[str, set[int]]) -> tuple[Body, int]:
        """This body without the records at ``bad`` indexes; also how many of those were counted."""
        n_points = len(self.metric_points)
        first_uncounted = n_points - self.uncounted_points
        removed_counted = sum(len(bad.get(k, ())) for k in ("spans", "runs")) + sum(
            1 for i in bad.get("metric_points", ()) if i < first_uncounted
        )
        removed_uncounted = sum(1 for i in bad.get("metric_points", ()) if i >= first_uncounted)

        def keep(key: str) -> list[dict[str, Any]]:
            out = bad.get(key, set())
            return [r for i, r in enumerate(getattr(self, key)) if i not in out]

        body = Body(keep("spans"), keep("metric_points"), keep("runs"),
                    self.uncounted_points - removed_uncounted)  # fmt: skip
        return body, removed_counted


def encode_body(records: list[Any], counted: int) -> tuple[Body, int]:
    """Sort ``records`` into a ``Body``; also the number of counted records JSON cannot carry.

    The first ``counted`` records are the application's, the rest the SDK's own metric
    points. A record with a value JSON cannot encode (a NaN metric value, an object in an
    attribute) is left out and counted as invalid rather than failing the whole batch.
    """
    spans: list[dict[str, Any]] = []
    points: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    uncounted = 0
    for i, record in enumerate(records):
        if isinstance(record, Span):
            spans.append(_span(record))
        elif isinstance(record, MetricPoint):
            points.append(_point(record))
            if i >= counted:
                uncounted += 1
        elif isinstance(record, Run):
            runs.append({k: v for k in _RUN_FIELDS if (v := getattr(record, k)) is not None})
    body = Body(spans, points, runs, uncounted)
    invalid = min(counted, len(records)) - body.counted
    try:
        body.encode()  # the common case: one pass, kept for the request
    except (TypeError, ValueError):
        body, bad = _encodable(body)
        invalid += bad
    return body, invalid


def _encodable(body: Body) -> tuple[Body, int]:
    """``body`` without the records JSON refuses (NaN, infinities, foreign objects)."""
    bad: dict[str, set[int]] = {}
    for key in ("spans", "metric_points", "runs"):
        for i, item in enumerate(getattr(body, key)):
            try:
                compact_json(item)
            except (TypeError, ValueError):
                bad.setdefault(key, set()).add(i)
    return body.without(bad)


def _span(span: Span) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in _SPAN_FIELDS:
        value = getattr(span, key)
        if value is None or (key in ("attributes", "events") and not value):
            continue
        if key == "events":
            value = [{"name": e.name, "time": e.time, "attributes": e.attributes} for e in value]
        out[key] = value
    return out


def _point(point: MetricPoint) -> dict[str, Any]:
    out: dict[str, Any] = {"name": point.name, "value": point.value, "timestamp": point.timestamp}
    if point.labels:
        out["labels"] = point.labels
    if point.run_id is not None:
        out["run_id"] = point.run_id
    if point.step is not None:
        out["step"] = point.step
    if point.point_id is not None:
        out["point_id"] = point.point_id
    return out


def decode_body(data: bytes, uncounted_points: int) -> Body:
    """A spooled body back as a ``Body`` (to take out records the server refused)."""
    doc = json.loads(gzip.decompress(data))
    return Body(doc.get("spans", []), doc.get("metric_points", []), doc.get("runs", []),
                uncounted_points)  # fmt: skip


_FIELD = re.compile(r"^(spans|metric_points|runs)\[(\d+)\]")


def rejected_indexes(problem: Any) -> dict[str, set[int]]:
    """The records a 422 problem body names (``errors[].field`` such as ``spans[3].name``)."""
    bad: dict[str, set[int]] = {}
    errors = problem.get("errors") if isinstance(problem, dict) else None
    for error in errors if isinstance(errors, list) else ():
        field = error.get("field") if isinstance(error, dict) else None
        match = _FIELD.match(field) if isinstance(field, str) else None
        if match:
            bad.setdefault(match.group(1), set()).add(int(match.group(2)))
    return bad


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP-date), capped."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER)


@dataclass(frozen=True, slots=True)
class Reply:
    """A server's answer: status, Retry-After in seconds, and the body (JSON if it was)."""

    status: int
    retry_after: float | None
    body: Any
    text: str

    def detail(self) -> str:
        """The problem's ``detail`` (or the start of the body) for log messages."""
        if isinstance(self.body, dict) and isinstance(self.body.get("detail"), str):
            return str(self.body["detail"])[:300]
        return self.text[:300] or "(no body)"


class Connection:
    """One keep-alive connection to the server (use one per thread)."""

    def __init__(self, server_url: str, api_key: str | None, timeout: float, user_agent: str):
        parts = urlsplit(server_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(
                f"server_url must be an http:// or https:// URL such as "
                f"http://127.0.0.1:8000, got {server_url!r}"
            )
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.path = parts.path.rstrip("/") + INGEST_PATH
        self.timeout = timeout
        self.headers = {
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "User-Agent": user_agent,
            "Accept": "application/json",
        }
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self._conn: http.client.HTTPConnection | None = None
        self._used = False  # the open connection has carried a request already

    def post(self, body: bytes) -> Reply:
        """POST one body; raises ``OSError`` / ``http.client.HTTPException`` when no answer came.

        A reused keep-alive connection that turns out closed (the server dropped it while
        idle) is retried once on a fresh one; a fresh connection failing raises.
        """
        for _ in (1, 2):
            fresh = self._conn is None or not self._used
            conn = self._connect()
            try:
                conn.request("POST", self.path, body=body, headers=self.headers)
                response = conn.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if fresh:
                    raise
                continue
            except BaseException:
                self.close()
                raise
            self._used = True
            if response.will_close:
                self.close()
            return _reply(response, data)
        raise ConnectionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _connect(self) -> http.client.HTTPConnection:
        if self._conn is None:
            conn: http.client.HTTPConnection
            if self.https:
                conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=self.timeout,
                    context=ssl.create_default_context(),
                )  # fmt: skip
            else:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                conn.connect()
            except BaseException:
                conn.close()
                raise
            if conn.sock is not None:
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._conn, self._used = conn, False
        return self._conn

    def close(self) -> None:
        """Close the socket (a new one is opened by the next ``post``)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.close()


def _reply(response: http.client.HTTPResponse, data: bytes) -> Reply:
    text = data.decode("utf-8", "replace")
    body: Any = None
    if "json" in (response.getheader("Content-Type") or ""):
        try:
            body = json.loads(text)
        except ValueError:
            body = None
    return Reply(response.status, parse_retry_after(response.getheader("Retry-After")), body, text)
