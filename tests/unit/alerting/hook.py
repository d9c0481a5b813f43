"""A real local webhook receiver that records what it ANSWERED: (idempotency key, status).

The outbox tests count deliveries by what the receiver acknowledged with a 2xx, which is what
"delivered exactly once" means to a receiver (retried 500s carry the same key, by design).
A request is recorded only after its answer was written, so a sender killed mid-request shows
up as "sent, not answered" or "answered, not recorded by the sender".
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.threaded_http import serving_in_thread


class Hook:
    """Answers ``failures`` requests with ``fail_status``, then 200; records each answer."""

    def __init__(self, server: ThreadingHTTPServer) -> None:
        self.server = server
        self.lock = threading.Lock()
        self.answered: list[tuple[str, int, dict[str, Any]]] = []
        self.failures = 0
        self.fail_status = 500
        self.delay_s = 0.0
        self.retry_after: str | None = None  # sent with failures
        self.in_flight = 0

    def settle(self, timeout: float = 5.0) -> None:
        """Wait until no request is being answered (a client may return before we record)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.in_flight == 0:
                    return
            time.sleep(0.005)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hook"

    def ok_keys(self) -> Counter[str]:
        """How many 2xx answers each idempotency key got."""
        self.settle()
        with self.lock:
            return Counter(k for k, status, _ in self.answered if status < 300)

    def ok_payloads(self) -> list[dict[str, Any]]:
        """Bodies of the requests answered 2xx, in order."""
        self.settle()
        with self.lock:
            return [body for _, status, body in self.answered if status < 300]


@contextmanager
def hook() -> Iterator[Hook]:
    """A threaded receiver on a free loopback port, stopped on exit."""
    holder: list[Hook] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            h = holder[0]
            with h.lock:
                h.in_flight += 1
            try:
                self._answer(h)
            finally:
                with h.lock:
                    h.in_flight -= 1

        def _answer(self, h: Hook) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with h.lock:
                status = h.fail_status if h.failures > 0 else 200
                h.failures -= 1 if h.failures > 0 else 0
            if h.delay_s:
                threading.Event().wait(h.delay_s)
            try:
                self.send_response(status)
                if status >= 300 and h.retry_after is not None:
                    self.send_header("Retry-After", h.retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()
                self.wfile.flush()
            except OSError:
                return  # the sender is gone: not answered
            with h.lock:
                h.answered.append((self.headers["webhook-id"], status, json.loads(body)))

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(Hook(server))
    with serving_in_thread(server):
        yield holder[0]
