"""What the store keeps per process, and a clean slate for it in a forked child.

* One writer lock per SQLite file, shared by every ``Store`` of the process on that file.
* The engines' pools of open connections.

``fork()`` copies both into the child as they were at that instant, and only the forking thread
survives there: a lock that another thread of the parent held is held forever in the child, and
a pooled connection is a socket or file handle the parent goes on using (two processes talking
over one PostgreSQL connection read each other's results). So:

* before a fork, the forking thread takes every SQLite writer lock (waiting at most
  ``FORK_WAIT_SECONDS`` for writes in progress): SQLite's own in-process lock bookkeeping is
  copied too, and a child forked in the middle of a write could never lock the file;
* the parent then releases them; the child starts with fresh locks and empty pools. The
  inherited pools are kept referenced, never closed: closing would end the parent's sessions.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from typing import Any

from sqlalchemy import Engine

__all__ = ["track_engine", "writer_lock", "writer_lock_key"]

FORK_WAIT_SECONDS = 5.0  # longest a fork waits for the writes in progress

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()
_engines: weakref.WeakSet[Engine] = weakref.WeakSet()
_inherited: list[Any] = []  # pools a forked child copied from its parent
_held_for_fork: list[threading.Lock] = []


def writer_lock_key(engine: Engine) -> str | None:
    """The key of ``engine``'s SQLite writer lock (its file), or ``None`` on PostgreSQL."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if database in (None, "", ":memory:"):
        return f"mem:{id(engine)}"
    return os.path.abspath(database)


def writer_lock(key: str) -> threading.Lock:
    """This process's writer lock for ``key`` (made on first use)."""
    lock = _locks.get(key)
    if lock is None:
        with _locks_guard:
            lock = _locks.setdefault(key, threading.Lock())
    return lock


def track_engine(engine: Engine) -> None:
    """Give ``engine`` a fresh pool in any child this process forks from now on."""
    _engines.add(engine)


def _before_fork() -> None:
    _locks_guard.acquire()
    deadline = time.monotonic() + FORK_WAIT_SECONDS
    for key in sorted(_locks):
        lock = _locks[key]
        if lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            _held_for_fork.append(lock)


def _after_fork_in_parent() -> None:
    while _held_for_fork:
        _held_for_fork.pop().release()
    _locks_guard.release()


def _after_fork_in_child() -> None:
    global _locks, _locks_guard
    _locks, _locks_guard = {}, threading.Lock()
    _held_for_fork.clear()
    for engine in list(_engines):
        if engine.dialect.name == "sqlite" and engine.url.database in (None, "", ":memory:"):
            continue  # an in-memory database exists only in its connection: the child's copy
        _inherited.append(engine.pool)
        engine.dispose(close=False)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(
        before=_before_fork,
        after_in_parent=_after_fork_in_parent,
        after_in_child=_after_fork_in_child,
    )
