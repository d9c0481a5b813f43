"""The test HTTP receivers' server loop, written once: a stdlib HTTP server answering in a
daemon thread until the block ends."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import ThreadingHTTPServer


@contextmanager
def serving_in_thread(server: ThreadingHTTPServer, name: str | None = None) -> Iterator[None]:
    """``server`` answering in a daemon thread (``name``) until the block ends; then shut down,
    closed and joined. It polls for shutdown every 50 ms, so a test's teardown waits at most
    that long, and each request's thread is a daemon, so none can hold up the exit."""
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
