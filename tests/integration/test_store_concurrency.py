"""Concurrent writers and readers: threads on both backends, two processes on SQLite."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from typing import Any

import pytest

from llmpulse.schema import Span
from llmpulse.store import Store

T0 = 1_700_000_000 // 3600 * 3600
BATCHES, BATCH = 8, 150


def _spans(writer: int, batch: int) -> list[Span]:
    return [
        Span(
            trace_id=f"w{writer}b{batch}",
            span_id=f"w{writer}b{batch}s{i}",
            name="chat",
            kind="llm",
            model=f"m{i % 3}",
            start_time=T0 + batch * 7 + i * 0.1,
            end_time=T0 + batch * 7 + i * 0.1 + 0.2,
            input_tokens=10,
            output_tokens=1,
        )
        for i in range(BATCH)
    ]


def _assert_consistent(store: Store, expected: int) -> None:
    assert store.health()["rows"]["spans"] == expected
    totals = store.span_stats(T0 - 3600, T0 + 7200)
    assert sum(r.calls for r in totals) == expected
    assert sum(r.input_tokens for r in totals) == expected * 10
    hourly = store.span_series(T0 - 3600, T0 + 7200, 3600)
    assert sum(r.calls for r in hourly) == expected


class TestThreads:
    def test_writers_and_readers(self, database_url: str) -> None:
        """Four writer threads and a reader thread share one store without errors; counts are exact."""
        store = Store.open(database_url)
        errors: list[BaseException] = []
        done = threading.Event()

        def write(w: int) -> None:
            try:
                for b in range(BATCHES):
                    assert store.write(spans=_spans(w, b)).spans == BATCH
            except BaseException as exc:  # collected for the assertion below
                errors.append(exc)

        def read() -> None:
            try:
                while not done.is_set():
                    store.span_stats(T0 - 60, T0 + 3600, group_by=("model",))
                    store.list_spans(T0 - 60, T0 + 3600, limit=10)
            except BaseException as exc:
                errors.append(exc)

        reader = threading.Thread(target=read)
        reader.start()
        writers = [threading.Thread(target=write, args=(w,)) for w in range(4)]
        for t in writers:
            t.start()
        for t in writers:
            t.join()
        done.set()
        reader.join()
        assert errors == []
        _assert_consistent(store, 4 * BATCHES * BATCH)
        store.close()


WORKER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[3])
    from tests.integration.test_store_concurrency import _spans
    from llmpulse.store import Store

    store = Store.open(sys.argv[1])
    writer = int(sys.argv[2])
    for b in range(int(sys.argv[4])):
        result = store.write(spans=_spans(writer, b))
        assert result.spans == len(_spans(writer, b)), result
    store.close()
    print("ok")
    """
)


class TestProcesses:
    def test_two_processes_on_sqlite(self, sqlite_url: str, request) -> None:
        """Two processes writing one SQLite file at once never see 'database is locked'."""
        Store.open(sqlite_url).close()  # both then find the schema current
        root = str(request.config.rootpath)
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER, sqlite_url, str(w), root, str(BATCHES * 2)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for w in range(2)
        ]
        outputs = [p.communicate(timeout=120) for p in procs]
        for p, (out, err) in zip(procs, outputs, strict=True):
            assert p.returncode == 0 and out.strip() == "ok", err
            assert "locked" not in err
        with Store.open(sqlite_url) as store:
            _assert_consistent(store, 2 * 2 * BATCHES * BATCH)


ROUNDS, KEYS, PER_KEY, WRITERS = 12, 6, 5, 3


def _new_key_spans(writer: int, round_: int) -> list[Span]:
    """Spans under KEYS rollup keys that no earlier round used; every writer uses the same ones."""
    return [
        Span(
            trace_id=f"k{writer}r{round_}",
            span_id=f"k{writer}r{round_}s{i}",
            name=f"step-{round_}",
            kind="llm",
            model=f"model-{round_}-{i % KEYS}",
            start_time=T0 + round_ * 60 + i * 0.01,
            end_time=T0 + round_ * 60 + i * 0.01 + 0.5,
            input_tokens=3,
            output_tokens=1,
        )
        for i in range(KEYS * PER_KEY)
    ]


KEY_WORKER = textwrap.dedent(
    """
    import pathlib, sys, time
    sys.path.insert(0, sys.argv[3])
    from tests.integration.test_store_concurrency import KEYS, PER_KEY, ROUNDS, _new_key_spans
    from llmpulse.store import Store

    url, writer, folder = sys.argv[1], int(sys.argv[2]), pathlib.Path(sys.argv[4])
    store = Store.open(url, migrate=False)
    (folder / f"ready-{writer}").touch()
    give_up = time.monotonic() + 60  # a hang guard, not a measurement
    while not (folder / "go").exists():  # all writers start together and meet each key at once
        if time.monotonic() > give_up:
            raise SystemExit("never told to start")
        time.sleep(0.001)
    for r in range(ROUNDS):
        result = store.write(spans=_new_key_spans(writer, r))
        assert result.spans == KEYS * PER_KEY and result.rejected == 0, result
    store.close()
    print("ok")
    """
)


class TestNewKeysAcrossProcesses:
    def test_writers_meeting_the_same_new_keys(self, database_url: str, request, tmp_path) -> None:
        """Processes that create the same new rollup keys at the same moment all succeed, one id per key."""
        import time

        Store.open(database_url).close()
        root = str(request.config.rootpath)
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", KEY_WORKER, database_url, str(w), root, str(tmp_path)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for w in range(WRITERS)
        ]
        give_up = time.monotonic() + 120  # a hang guard, not a measurement
        while len(list(tmp_path.glob("ready-*"))) < WRITERS and time.monotonic() < give_up:
            if any(p.poll() is not None for p in procs):
                break
            time.sleep(0.01)
        (tmp_path / "go").touch()
        outputs = [p.communicate(timeout=300) for p in procs]
        for p, (out, err) in zip(procs, outputs, strict=True):
            assert p.returncode == 0 and out.strip() == "ok", err
            assert "KeyError" not in err
        with Store.open(database_url) as store:
            assert store.health()["rows"]["rollup_keys"] == ROUNDS * KEYS
            stats = store.span_stats(T0 - 60, T0 + ROUNDS * 60 + 60, group_by=("model",))
        assert len(stats) == ROUNDS * KEYS
        assert {s.calls for s in stats} == {WRITERS * PER_KEY}


RACE_KEY = ("llm", "chat", "race-model", "", "", "")


def _wait_for_a_blocked_writer(conn: Any) -> None:
    """Return once a store connection waits on a lock (or after a hang guard, whichever first)."""
    import time

    give_up = time.monotonic() + 30
    while time.monotonic() < give_up:
        waiting = conn.execute(
            "select count(*) from pg_stat_activity where application_name = 'llmpulse'"
            " and wait_event_type = 'Lock' and datname = current_database()"
        ).fetchone()[0]
        if waiting:
            return
        time.sleep(0.01)


class TestKeyInsertedByAnotherTransaction:
    @pytest.mark.parametrize(
        "isolation", ["read%5C%20committed", "repeatable%5C%20read"], ids=["rc", "rr"]
    )
    @pytest.mark.parametrize("other_commits", [True, False], ids=["commits", "rolls-back"])
    def test_write_waits_and_uses_the_one_id(
        self, postgres_url: str, isolation: str, other_commits: bool
    ) -> None:
        """A write meeting a key another transaction is inserting right then stores under one id."""
        import psycopg

        url = f"{postgres_url}%20-cdefault_transaction_isolation%3D{isolation}"
        store = Store.open(url)
        span = Span(
            trace_id="race", span_id="race-1", name="chat", kind="llm", model="race-model",
            start_time=T0, end_time=T0 + 1, input_tokens=1, output_tokens=1,
        )  # fmt: skip
        outcome: list[Any] = []
        with psycopg.connect(postgres_url) as other, psycopg.connect(postgres_url) as watcher:
            watcher.autocommit = True
            other_id = other.execute(
                "insert into rollup_keys (kind, name, model, provider, prompt_version, branch)"
                " values (%s, %s, %s, %s, %s, %s) returning id",
                RACE_KEY,
            ).fetchone()[0]
            writer = threading.Thread(target=lambda: outcome.append(store.write(spans=[span])))
            writer.start()
            _wait_for_a_blocked_writer(watcher)
            other.commit() if other_commits else other.rollback()
            writer.join(60)
        assert len(outcome) == 1 and outcome[0].spans == 1
        with store._engine.connect() as conn:  # noqa: SLF001 - checks which key id was used
            ids = conn.exec_driver_sql(
                "select id from rollup_keys where model = 'race-model'"
            ).all()
            used = conn.exec_driver_sql("select distinct key_id from rollups").all()
        assert len(ids) == 1 and used == ids
        assert (ids[0][0] == other_id) is other_commits
        assert store.span_stats(T0 - 60, T0 + 60)[0].calls == 1
        store.close()
