"""WAL checkpoints of a SQLite store on a thread of their own, off the write path.

In WAL mode, commits append pages to the ``-wal`` file and a checkpoint copies them back into
the database file. SQLite runs that checkpoint inside whichever commit crosses 1,000 pages,
and syncs both files there: about a quarter of a busy writer's time went into it (2.3 of
9.5 µs per span). Here a daemon thread with its own connection runs a PASSIVE checkpoint after
commits instead. A PASSIVE checkpoint never blocks the writer or readers, and the sqlite3
module releases the GIL for all of it, so it runs beside the next batch.

Checkpoints follow commits closely (after every large commit or busy stretch, and at most
every ``INTERVAL`` seconds for a trickle of small ones), so the WAL is reset between batches as
before and stays a few megabytes. The WAL is only reset when a write begins with every page
already copied, which a writer that never pauses can prevent: a checkpoint that finds
``LOCKED_FRAMES`` pages copies the (by then short) rest holding this process's writer lock, so
the next write resets the WAL. And should the thread get no CPU, the store's connections keep
SQLite's own inline checkpoint, at ``INLINE_PAGES`` instead of 1,000 pages. A thread that
cannot run (interpreter exit) changes nothing that matters: the last connection to close
checkpoints the whole WAL. A fork waits for a checkpoint in progress (as it waits for a
write); the child starts its own thread on its first commit and never touches the parent's
connection.

A reader holding one read transaction open (a long report, a ``sqlite3`` shell left in
``BEGIN``) pins the WAL: no checkpoint may copy pages past its snapshot, so every commit
meanwhile grows the file (782 MiB in 20 s under a busy writer), and SQLite never shrinks a WAL
file by itself. Once the WAL passes ``TRUNCATE_BYTES``, this thread tries a TRUNCATE checkpoint
after each checkpoint and when idle (every ``_IDLE_WAIT`` s); it takes no wait (busy timeout
0), so while the reader stays it fails at once and blocks nobody, and soon after the reader
leaves it empties the file. The store's connections also keep ``journal_size_limit`` at
``TRUNCATE_BYTES``, so a reset WAL is cut back to that size on its next commit.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable

__all__ = ["Checkpointer"]

log = logging.getLogger(__name__)

ROWS = 1000  # a commit of this many rows is followed by a checkpoint at once
INTERVAL = 0.5  # smaller commits: at most one checkpoint per this many seconds...
BUSY_FRAMES = 256  # ...unless the last checkpoint found this many pages (1 MiB) in the WAL
# A checkpoint that finds this many pages (16 MiB) in the WAL finishes between two writes.
LOCKED_FRAMES = 4000
_LOCK_WAIT = 2.0  # longest wait for the write in progress; else the next checkpoint tries
# The store's connections still checkpoint inline past this many pages (32 MiB): the bound
# when this thread gets no CPU (see the module docstring).
INLINE_PAGES = 8000
_IDLE_WAIT = 5.0  # the thread re-checks for close() (and an oversized WAL) this often
# A WAL larger than this (64 MiB) is truncated as soon as no reader pins it (see above).
TRUNCATE_BYTES = 64 << 20

# Connections a forked child inherited: never used or closed there, only kept referenced.
_inherited: list[sqlite3.Connection] = []
_live: weakref.WeakSet[Checkpointer] = weakref.WeakSet()
_held_for_fork: list[threading.Lock] = []
FORK_WAIT_SECONDS = 5.0  # longest a fork waits for a checkpoint in progress


class Checkpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` on ``path`` after commits, on a daemon thread."""

    def __init__(
        self, path: str, *, busy_timeout: float, writer_lock: Callable[[], threading.Lock]
    ) -> None:
        self.path = path
        self.busy_timeout = busy_timeout
        self._writer_lock = writer_lock  # this process's writer lock for the file, per call
        self.checkpoints = 0  # completed checkpoint statements (for tests and health)
        self.truncations = 0  # TRUNCATE checkpoints that emptied the WAL file
        # Held while the thread is inside SQLite (connecting, checkpointing, closing): a fork
        # waits for it, as for a write (see _process.py), so no child copies SQLite's
        # in-process locks half taken by a thread it does not have.
        self._busy = threading.Lock()
        self._reset()
        _live.add(self)

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self._rows = 0  # rows committed since the last checkpoint
        self._last = float("-inf")  # never: the first commit is checkpointed at once
        self._failed = False

    def committed(self, rows: int) -> None:
        """Note a commit of ``rows`` rows; the thread checkpoints soon after. Never raises."""
        try:
            if self._pid != os.getpid():  # a forked child: the parent's thread is not here
                if self._conn is not None:
                    _inherited.append(self._conn)
                self._reset()
            self._rows += rows
            if self._thread is None or not self._thread.is_alive():
                self._start()
            self._wake.set()
        except Exception:  # a checkpoint is housekeeping: a write must never fail for it
            log.debug("checkpoint scheduling failed", exc_info=True)

    def _start(self) -> None:
        with self._start_lock:
            if self._failed or (self._thread is not None and self._thread.is_alive()):
                return
            thread = threading.Thread(
                target=self._run, args=(self._stop, self._wake), name="llmpulse-checkpoint",
                daemon=True,
            )  # fmt: skip
            try:
                thread.start()
            except RuntimeError:  # interpreter shutting down: closing will checkpoint
                return
            self._thread = thread

    def _run(self, stop: threading.Event, wake: threading.Event) -> None:
        try:
            with self._busy:
                conn = self._conn = sqlite3.connect(
                    self.path, timeout=self.busy_timeout, check_same_thread=False
                )
        except sqlite3.Error as exc:
            self._failed = True
            log.warning("WAL checkpoints: cannot open %s (%s); the WAL is checkpointed when "
                        "the store closes", self.path, exc)  # fmt: skip
            return
        busy = False  # the last checkpoint found a WAL of many pages: no pause before the next
        while not stop.is_set():
            if not wake.wait(_IDLE_WAIT):
                self._shrink(conn)
                continue
            # A trickle of small commits is gathered for up to INTERVAL after the last
            # checkpoint; each commit wakes the wait, so ROWS rows end it at once.
            while self._rows < ROWS and not busy and not stop.is_set():
                wait = INTERVAL - (time.monotonic() - self._last)
                if wait <= 0:
                    break
                wake.clear()
                wake.wait(wait)
            if stop.is_set():
                break
            wake.clear()
            self._rows = 0
            self._last = time.monotonic()
            try:
                with self._busy:
                    _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.checkpoints += 1
                if frames >= LOCKED_FRAMES:
                    self._between_writes(conn)
                busy = frames >= BUSY_FRAMES
                self._shrink(conn)
            except sqlite3.Error as exc:  # busy or locked: the next commit tries again
                log.debug("WAL checkpoint skipped: %s", exc)
        with self._busy:
            conn.close()

    def _shrink(self, conn: sqlite3.Connection) -> None:
        """Empty a WAL file past ``TRUNCATE_BYTES``, unless a reader still pins it (no wait)."""
        try:
            if os.path.getsize(self.path + "-wal") <= TRUNCATE_BYTES:
                return
        except OSError:  # no WAL file
            return
        try:
            with self._busy:
                conn.execute("PRAGMA busy_timeout=0")
                try:
                    row = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                finally:
                    conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
                self.checkpoints += 1
        except sqlite3.Error as exc:  # a writer or reader in the way: the next pass tries again
            log.debug("WAL truncation skipped: %s", exc)
            return
        if row is not None and row[0] == 0:
            self.truncations += 1

    def _between_writes(self, conn: sqlite3.Connection) -> None:
        """Checkpoint the rest with this process's writes held back, so the next one resets
        the WAL (a writer that never pauses would otherwise keep it from ever being reset).

        ``_busy`` is only tried, never waited for, while the writer lock is held: only a fork
        in progress can hold it then, and this pass is skipped. So the thread never waits for
        one of the two locks holding the other, whatever order the fork hooks take them in."""
        lock = self._writer_lock()
        if not lock.acquire(timeout=_LOCK_WAIT):
            return
        try:
            if self._busy.acquire(blocking=False):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                finally:
                    self._busy.release()
        finally:
            lock.release()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread (after a checkpoint in progress) and close its connection."""
        if self._pid != os.getpid():
            return
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._reset()  # a store used again after close() gets a new thread on its next commit


def _before_fork() -> None:
    deadline = time.monotonic() + FORK_WAIT_SECONDS
    for checkpointer in list(_live):
        lock = checkpointer._busy
        if lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            _held_for_fork.append(lock)


def _after_fork_in_parent() -> None:
    while _held_for_fork:
        _held_for_fork.pop().release()


def _after_fork_in_child() -> None:
    _held_for_fork.clear()
    for checkpointer in list(_live):
        checkpointer._busy = threading.Lock()  # the copy is held by the forking thread


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )
