"""WAL checkpoints on the store's own thread (SQLite), instead of inside the writer's commits.

The checks are on files, not on time: pages reach the database file itself, the WAL stays
bounded under a writer that never pauses, and a forked child checkpoints its own writes.
Waits poll a counter with a generous deadline and only detect a checkpoint that never comes.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from llmpulse.store import Store, _checkpoint
from llmpulse.store._checkpoint import INLINE_PAGES

from .conftest import T0, make_span

HANG = 60.0


def _wait_for_checkpoints(store: Store, at_least: int) -> None:
    checkpointer = store._checkpointer
    assert checkpointer is not None
    deadline = time.monotonic() + HANG
    while checkpointer.checkpoints < at_least:
        assert time.monotonic() < deadline, "the checkpoint thread never checkpointed"
        time.sleep(0.01)


def _rows_in_main_file(store: Store, db: Path, tmp_path: Path) -> int:
    """Spans readable from the database file alone, without its -wal (copied between two
    checkpoints: a copy taken while one writes pages could be torn)."""
    copy = tmp_path / "main-file-only.db"
    assert store._checkpointer is not None
    with store._checkpointer._busy:
        shutil.copyfile(db, copy)
    conn = sqlite3.connect(copy)
    try:
        return int(conn.execute("SELECT count(*) FROM spans").fetchone()[0])
    except sqlite3.OperationalError:  # not even the schema is checkpointed yet
        return 0
    finally:
        conn.close()


def _spans(n: int, text: str = "") -> list:  # type: ignore[type-arg]
    return [make_span(start=T0 + i % 600, input=text or None) for i in range(n)]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "llmpulse.db"


_FORK_LOOP = """
import os, random, sys, threading, time
from llmpulse.schema import Span
from llmpulse.store import Store

def spans(who, n):
    return [Span(trace_id=who, span_id=f"{who}-{i}", name=who, kind="llm", start_time=1.7e9 + i,
                 end_time=1.7e9 + i + 0.5, input="x" * 2000) for i in range(n)]

stuck, rng = 0, random.Random(5)
for k in range(int(sys.argv[2])):
    store = Store.open(f"sqlite:///{sys.argv[1]}/{k}.db")  # a new file: the thread starts anew
    store.write(spans=spans("parent", 50))  # wakes the checkpoint thread
    time.sleep(rng.uniform(0, 0.003))  # fork somewhere in its connecting or checkpointing
    pid = os.fork()
    if pid == 0:
        done = []
        t = threading.Thread(target=lambda: done.append(store.write(spans=spans("child", 5))))
        t.start()
        t.join(5)
        os._exit(0 if done else 3)
    _, status = os.waitpid(pid, 0)
    stuck += os.waitstatus_to_exitcode(status) != 0
    store.close()
print(stuck)
"""


class TestCheckpointThread:
    def test_store_connections_leave_checkpoints_to_the_thread(self, db: Path) -> None:
        """Commits checkpoint inline only past INLINE_PAGES; the thread does it before that."""
        with Store.open(f"sqlite:///{db}") as store, store._engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == INLINE_PAGES
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"

    def test_committed_pages_reach_the_database_file(self, db: Path, tmp_path: Path) -> None:
        """After a large commit the thread copies the WAL into the main file, while open."""
        store = Store.open(f"sqlite:///{db}")
        try:
            store.write(spans=_spans(_checkpoint.ROWS))
            _wait_for_checkpoints(store, 1)
            assert _rows_in_main_file(store, db, tmp_path) == _checkpoint.ROWS
        finally:
            store.close()

    def test_small_commits_are_checkpointed_too(self, db: Path, tmp_path: Path) -> None:
        """A trickle of small commits reaches the main file within the interval."""
        store = Store.open(f"sqlite:///{db}")
        try:
            for _ in range(3):
                store.write(spans=_spans(5))
            deadline = time.monotonic() + HANG
            while _rows_in_main_file(store, db, tmp_path) < 15:
                assert time.monotonic() < deadline, "small commits stayed in the WAL"
                time.sleep(_checkpoint.INTERVAL / 5)
        finally:
            store.close()

    def test_small_commits_adding_up_to_rows_do_not_wait_for_the_interval(
        self, db: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Commits smaller than ROWS are gathered only until ROWS rows have arrived."""
        monkeypatch.setattr(_checkpoint, "INTERVAL", 3600.0)
        store = Store.open(f"sqlite:///{db}")
        try:
            store.write(spans=_spans(_checkpoint.ROWS // 2))  # the first commit checkpoints
            _wait_for_checkpoints(store, 1)
            for _ in range(2):
                store.write(spans=_spans(_checkpoint.ROWS // 2))
            _wait_for_checkpoints(store, 2)
        finally:
            store.close()

    def test_a_writer_that_never_pauses_keeps_the_wal_bounded(self, db: Path) -> None:
        """Back-to-back commits: the WAL is still reset, instead of growing with every batch.

        64 batches of 500 spans with 4 KB prompts write ~150 MB of pages; a WAL that is never
        reset would hold all of them.
        """
        text = "p" * 4096
        wal = Path(f"{db}-wal")
        largest = 0
        store = Store.open(f"sqlite:///{db}")
        try:
            for _ in range(64):
                store.write(spans=_spans(500, text))
                largest = max(largest, wal.stat().st_size)
        finally:
            store.close()
        assert largest < 40 << 20, f"the WAL grew to {largest / 2**20:.0f} MiB"
        with Store.open(f"sqlite:///{db}") as store:
            assert store.health()["rows"]["spans"] == 64 * 500

    def test_the_wal_is_emptied_after_a_long_reader_leaves(
        self, db: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A reader holding one transaction pins the WAL, which grows with every commit; once
        it leaves, the thread empties the WAL without another write, and health says so."""
        from llmpulse.store import _health

        monkeypatch.setattr(_checkpoint, "TRUNCATE_BYTES", 1 << 20)
        monkeypatch.setattr(_checkpoint, "_IDLE_WAIT", 0.05)
        monkeypatch.setattr(_health, "WAL_WARN_BYTES", 2 << 20)
        wal = Path(f"{db}-wal")
        store = Store.open(f"sqlite:///{db}")
        try:
            store.write(spans=_spans(10))
            reader = sqlite3.connect(db, isolation_level=None)
            reader.execute("BEGIN")
            reader.execute("SELECT count(*) FROM spans").fetchone()  # holds its snapshot
            for _ in range(10):
                store.write(spans=_spans(100, "p" * 4096))
            pinned = wal.stat().st_size
            assert pinned > 3 << 20, "the reader did not pin the WAL"
            (warning,) = store.health()["warnings"]
            assert "read transaction held open" in warning
            reader.execute("COMMIT")
            reader.close()
            checkpointer = store._checkpointer
            assert checkpointer is not None
            deadline = time.monotonic() + HANG
            # (the file is emptied inside the statement, before the thread counts it)
            while checkpointer.truncations < 1:
                assert time.monotonic() < deadline, "the WAL stayed large after the reader left"
                time.sleep(0.02)
            assert not wal.exists() or wal.stat().st_size <= _checkpoint.TRUNCATE_BYTES
            report = store.health()
            assert "warnings" not in report and report["wal_bytes"] <= 1 << 20
            assert report["rows"]["spans"] == 1010
        finally:
            store.close()

    def test_close_stops_the_thread_and_a_later_write_starts_one(self, db: Path) -> None:
        """close() ends the thread; the WAL is folded in on close; the store still works after."""
        store = Store.open(f"sqlite:///{db}")
        store.write(spans=_spans(10))
        checkpointer = store._checkpointer
        assert checkpointer is not None
        thread = checkpointer._thread
        store.close()
        assert thread is not None and not thread.is_alive()
        assert not Path(f"{db}-wal").exists()  # the last connection checkpointed and removed it
        store.write(spans=_spans(_checkpoint.ROWS))
        _wait_for_checkpoints(store, 1)
        store.close()

    def test_memory_database_has_no_thread(self) -> None:
        """:memory: has no WAL and no file to checkpoint."""
        with Store.open("sqlite://") as store:
            assert store._checkpointer is None
            assert store.write(spans=_spans(3)).spans == 3

    def test_forked_child_checkpoints_its_own_writes(self, db: Path, tmp_path: Path) -> None:
        """A child forked after the parent's thread started runs a thread of its own."""
        script = f"""
            import os, sys, time
            sys.path.insert(0, {str(Path(__file__).resolve().parents[3])!r})
            from llmpulse.store import Store, _checkpoint
            from tests.unit.store.conftest import T0, make_span
            store = Store.open(sys.argv[1])
            store.write(spans=[make_span(start=T0 + i) for i in range(_checkpoint.ROWS)])
            pid = os.fork()
            if pid == 0:
                store.write(spans=[make_span(start=T0 + i) for i in range(_checkpoint.ROWS)])
                deadline = time.monotonic() + {HANG}
                while store._checkpointer.checkpoints < 1 and time.monotonic() < deadline:
                    time.sleep(0.01)
                os._exit(0 if store._checkpointer.checkpoints >= 1 else 3)
            _, status = os.waitpid(pid, 0)
            print(os.waitstatus_to_exitcode(status))
        """
        proc = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(script), f"sqlite:///{db}"],
            capture_output=True, text=True, timeout=HANG * 2,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.strip().splitlines()[-1] == "0"
        with Store.open(f"sqlite:///{db}") as store:
            assert store.health()["rows"]["spans"] == 2 * _checkpoint.ROWS

    def test_forks_during_checkpoints_leave_children_able_to_write(self, tmp_path: Path) -> None:
        """Forking while the parent's checkpoint thread connects or checkpoints: no child stuck.

        A child copied while that thread was inside SQLite would inherit SQLite's in-process
        locks as taken, by a thread it does not have, and wait on them until the busy timeout.
        Without the fork guard, 1 to 5 of these 60 forks got stuck in runs made here.
        """
        proc = subprocess.run(
            [sys.executable, "-c", _FORK_LOOP, str(tmp_path), "60"],
            capture_output=True, text=True, timeout=HANG * 10,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert proc.stdout.strip().splitlines()[-1] == "0", "children stuck after a fork"

    def test_a_fork_waits_for_a_checkpoint_in_progress(self, db: Path) -> None:
        """The fork guard itself: os.fork() returns only after the checkpoint lock is free."""
        store = Store.open(f"sqlite:///{db}")
        try:
            store.write(spans=_spans(_checkpoint.ROWS))
            _wait_for_checkpoints(store, 1)
            checkpointer = store._checkpointer
            assert checkpointer is not None
            inside, finished = threading.Event(), threading.Event()

            def checkpoint_in_progress() -> None:
                with checkpointer._busy:  # what the thread holds around a checkpoint
                    inside.set()
                    time.sleep(0.2)
                    finished.set()

            holder = threading.Thread(target=checkpoint_in_progress)
            holder.start()
            assert inside.wait(HANG)
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            assert finished.is_set(), "fork() went ahead in the middle of a checkpoint"
            os.waitpid(pid, 0)
            holder.join()
        finally:
            store.close()
