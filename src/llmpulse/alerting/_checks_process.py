"""The checks of detection rules in a child process, so they never hold the server's interpreter.

``AlertRunner`` re-runs aged checks outside the tick, but a thread of the same process is not
outside the interpreter: ``llmpulse.checks`` is seconds of Python (~5 s a run over four
window/baseline pairs at 5M spans, 22 s under load), and while it holds the interpreter lock
every tick that overlaps it waits in turn, worst after each SQLite call, which gives the lock
back and must win it again (bench/alerting.py ``--refresh runner``, 5M spans, 1,000 rules:
ticks overlapping a refresh p50 263-413 ms and up to 1,020 ms, the others ~100-145 ms, so the
p95 was always an overlapping tick; docs/benchmarks.md).

So :class:`ChecksProcess` starts one child (``spawn``: a fresh interpreter, no copy of the
parent's threads or connections), which opens the same store by its URL (a SQLite file or
PostgreSQL; an in-memory SQLite database has no URL another process can open, and its checks
stay in-process) and answers one ``(now, window, baseline)`` request at a time with the
findings. The caller's thread waits on a pipe, which holds no lock. Out of the lock the checks
still compete for the cores, so the child runs at a lower priority (``CHILD_NICENESS``).

When things go wrong: an error in the checks comes back as a ``StoreError`` naming it, and the
child stays; a child that died (killed, out of memory) is noticed at the next request, which
starts a new one. ``close()`` ends the child (terminating it if a run is in progress: it only
reads) and waits for it, so no process outlives the runner; if the parent is killed instead,
the child reads the end of its pipe and exits after the run in progress. It ignores SIGINT: a
Ctrl-C reaches the whole process group, and the parent decides when the child stops.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
from typing import TYPE_CHECKING, Any

from llmpulse.errors import StoreError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    from llmpulse.checks import Finding
    from llmpulse.store import Store

__all__ = ["ChecksProcess"]

log = logging.getLogger("llmpulse.alerting")

#: How long to wait for a child told to stop (or found dead) to end before killing it.
CLOSE_WAIT_SECONDS = 5.0
#: Added to the child's nice value. Out of the interpreter lock the checks still compete for
#: the cores: on 2 shared cores a tick overlapping them took up to 290-430 ms against ~100 ms
#: (niced: at most 125 ms). The checks are background work whose findings are minutes old
#: anyway, so the tick (and the server's requests) go first; a refresh takes longer instead.
CHILD_NICENESS = 10


def _serve(conn: Connection, url: str) -> None:
    """The child: open the store, answer requests until told to stop or the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    nice = getattr(os, "nice", None)  # POSIX only; the checks are right either way
    if nice is not None:
        with contextlib.suppress(OSError):
            nice(CHILD_NICENESS)
    from llmpulse.alerting._query import run_checks
    from llmpulse.store import Store

    store: Store | None = None
    try:
        while True:
            try:
                job = conn.recv()
            except (EOFError, OSError):  # the parent is gone
                return
            if job is None:
                return
            try:
                if store is None:
                    store = Store.open(url, migrate=False)
                reply: tuple[bool, Any] = (True, run_checks(store, *job))
            except Exception as exc:
                reply = (False, f"{type(exc).__name__}: {exc}")
            try:
                conn.send(reply)
            except (EOFError, OSError):
                return
    finally:
        if store is not None:
            store.close()


class ChecksProcess:
    """``llmpulse.checks`` runs for one store, in a child process of their own. Example::

    checks = ChecksProcess.for_store(store)  # None for an in-memory SQLite store
    findings = checks(now, 3600.0, 86400.0)  # waits for the child; starts it if needed
    checks.close()
    """

    def __init__(self, url: str, shown_url: str) -> None:
        self._url = url
        self._shown = shown_url
        self._lock = threading.Lock()  # one request at a time on the pipe
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._closed = False
        #: Runs the child answered with findings.
        self.runs = 0

    @classmethod
    def for_store(cls, store: Store) -> ChecksProcess | None:
        """A checks process for ``store``, or ``None`` when no other process can open it."""
        url = store.shared_url()
        return None if url is None else cls(url, store.url)

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        process = self._process
        return process.pid if process is not None and process.is_alive() else None

    def __call__(self, now: float, window_s: float, baseline_s: float) -> list[Finding]:
        """The findings of one run of the checks at ``now`` (``run_checks``), from the child."""
        with self._lock:
            if self._closed:
                raise StoreError(f"the checks process of {self._shown} is closed")
            conn = self._start()
            try:
                conn.send((now, window_s, baseline_s))
                ok, value = conn.recv()
            except (EOFError, OSError) as exc:
                self._reap()
                raise StoreError(
                    f"the checks process of {self._shown} ended during a run"
                    + ("" if self._closed else "; a new one starts at the next run")
                ) from exc
            if ok:
                self.runs += 1
        if not ok:
            raise StoreError(f"checks failed on {self._shown}: {value}")
        findings: list[Finding] = value
        return findings

    def _start(self) -> Connection:
        if self._process is not None and self._conn is not None and self._process.is_alive():
            return self._conn
        self._reap()
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(
            target=_serve, args=(child, self._url), name="llmpulse-alert-checks", daemon=True
        )
        process.start()
        child.close()  # the parent keeps only its end: the child's EOF is the parent's death
        self._process, self._conn = process, parent
        log.info("Started the detection checks process (pid %s) for %s", process.pid, self._shown)
        return parent

    def _reap(self) -> None:
        """Forget a child that ended, closing our end of its pipe and collecting it."""
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if conn is not None:
            conn.close()
        if process is not None:
            process.join(CLOSE_WAIT_SECONDS)
            if process.is_alive():
                process.kill()
                process.join()

    def close(self) -> None:
        """End the child and wait for it; a run in progress is cut short (it only reads)."""
        self._closed = True
        while not self._lock.acquire(timeout=0.1):
            process = self._process
            if process is not None:  # a run in progress: its caller gets an error, not findings
                process.terminate()
        try:
            conn = self._conn
            if conn is not None:
                with contextlib.suppress(EOFError, OSError):
                    conn.send(None)
            self._reap()
        finally:
            self._lock.release()
