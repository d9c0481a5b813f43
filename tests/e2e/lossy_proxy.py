"""A real HTTP proxy in front of a real server that can lose the server's answers.

``lose`` ingest answers are thrown away: the request reaches the server, which commits and
answers, and the client's connection is then closed without a word, as when the network
drops the acknowledgement. ``unavailable`` ingest requests are answered 503 (Retry-After: 0)
without reaching the server, as a load balancer does while the server is down. Everything
else is passed through unchanged. Runs ``http.server``
in a thread on a free port; the upstream answers are kept for the test to read.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from tests.threaded_http import serving_in_thread

_HOP = frozenset(("connection", "keep-alive", "transfer-encoding", "content-length", "host"))


@dataclass
class Forwarded:
    """One request the proxy forwarded: what it carried and what the server answered."""

    path: str
    request: dict[str, Any]  # the JSON body (gunzipped)
    status: int
    answer: Any
    lost: bool  # the answer was thrown away


@dataclass
class LossyProxy:
    upstream: str
    lose: int = 0  # how many ingest answers to lose next
    unavailable: int = 0  # how many ingest requests to answer 503 next, without forwarding
    url: str = ""
    forwarded: list[Forwarded] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def lost(self) -> list[Forwarded]:
        return [f for f in self.forwarded if f.lost]


@contextmanager
def lossy_proxy(upstream: str, lose: int = 0) -> Iterator[LossyProxy]:
    """Proxy to ``upstream`` on 127.0.0.1 (any free port); yields the ``LossyProxy``."""
    proxy = LossyProxy(upstream=upstream, lose=lose)
    client = httpx.Client(base_url=upstream, timeout=30)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the llmpulse server does

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            with proxy.lock:
                down = proxy.unavailable > 0 and self.path.endswith("/ingest")
                proxy.unavailable -= 1 if down else 0
            if down:
                self.send_response(503)
                self.send_header("retry-after", "0")
                self.send_header("content-length", "0")
                self.end_headers()
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
            reply = client.post(self.path, content=raw, headers=headers)
            with proxy.lock:
                lose = proxy.lose > 0 and self.path.endswith("/ingest")
                proxy.lose -= 1 if lose else 0
                proxy.forwarded.append(Forwarded(self.path, _doc(raw, self.headers),
                                                 reply.status_code, _json(reply), lose))  # fmt: skip
            if lose:  # committed upstream; the client never hears of it
                self.close_connection = True
                return
            self.send_response(reply.status_code)
            for key, value in reply.headers.items():
                if key.lower() not in _HOP and key.lower() != "content-encoding":
                    self.send_header(key, value)
            self.send_header("content-length", str(len(reply.content)))
            self.end_headers()
            self.wfile.write(reply.content)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with serving_in_thread(server, "lossy-proxy"):
            yield proxy
    finally:
        client.close()


def _doc(raw: bytes, headers: Any) -> dict[str, Any]:
    try:
        data = gzip.decompress(raw) if headers.get("content-encoding") == "gzip" else raw
        out: dict[str, Any] = json.loads(data)
        return out
    except ValueError:
        return {}


def _json(reply: httpx.Response) -> Any:
    try:
        return reply.json()
    except ValueError:
        return None
