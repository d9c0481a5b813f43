"""A real HTTP server that answers ingest requests from a script, and records what it got.

For what the llmpulse server itself would not do on demand: answer 503 with Retry-After a
given number of times, or 413, then 200. Runs ``http.server`` in a thread on a free port.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.threaded_http import serving_in_thread


@dataclass
class Received:
    """One request as the receiver saw it."""

    at: float  # time.monotonic() when it arrived
    headers: dict[str, str]
    raw: bytes
    status: int  # what the receiver answered

    def doc(self) -> dict[str, Any]:
        """The JSON body, gunzipped when it was sent gzip-encoded."""
        data = self.raw
        if self.headers.get("content-encoding") == "gzip":
            data = gzip.decompress(data)
        out: dict[str, Any] = json.loads(data)
        return out


@dataclass
class Receiver:
    """``script``: (status, headers) answered to the first requests, in order; then 200."""

    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def records(self, kind: str = "spans") -> int:
        """Records of ``kind`` in the requests answered 200."""
        return sum(len(r.doc().get(kind, [])) for r in self.received if r.status == 200)


@contextmanager
def receiving(
    script: list[tuple[int, dict[str, str]]] | None = None, port: int = 0
) -> Iterator[Receiver]:
    """Serve a scripted ingest endpoint on 127.0.0.1 (port 0: any); yields the ``Receiver``."""
    receiver = Receiver(script=list(script or []))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the llmpulse server does

        def do_POST(self) -> None:  # noqa: N802 - the http.server name
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with receiver.lock:
                status, headers = receiver.script.pop(0) if receiver.script else (200, {})
                receiver.received.append(Received(
                    time.monotonic(), {k.lower(): v for k, v in self.headers.items()}, raw, status,
                ))  # fmt: skip
            if status == 200:
                doc = Received(0, {k.lower(): v for k, v in self.headers.items()}, raw, 200).doc()
                payload = {"spans": len(doc.get("spans", [])),
                           "metric_points": len(doc.get("metric_points", [])),
                           "runs": len(doc.get("runs", [])), "duplicates": 0, "rejected": {}}  # fmt: skip
            else:
                payload = {"status": status, "detail": f"scripted {status}"}
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}"
    with serving_in_thread(server, "receiver"):
        yield receiver
