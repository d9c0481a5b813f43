"""Concurrent writers and readers: threads on both backends, two processes on SQLite."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

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
