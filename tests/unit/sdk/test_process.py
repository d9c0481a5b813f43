"""Process lifecycle: exit without flush, unreachable store at exit, fork and multiprocessing.

Each scenario runs in a fresh interpreter (subprocess), as an application would. The
subprocess timeouts only detect hangs; nothing here measures wall-clock time.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator

import pytest

from llmpulse.store import Store

HANG = 120  # seconds after which a scenario is considered hung


def _run(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True, text=True, timeout=HANG,
    )  # fmt: skip
    assert proc.returncode == 0, f"scenario failed:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return proc


def _span_names(url: str) -> Counter[str]:
    with Store.open(url) as store:
        spans = store.list_spans(0, 4e9, limit=100_000)
    assert len({s.span_id for s in spans}) == len(spans), "duplicated span ids"
    return Counter(s.name for s in spans)


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word (a hung database)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        yield server.getsockname()[1]


class TestExit:
    def test_exit_without_flush_stores_everything(self, database_url: str) -> None:
        """A process that records 1,000 spans and just ends has all 1,000 in the store."""
        _run(
            """
            import sys, llmpulse
            llmpulse.init(sys.argv[1], instrument=(), flush_interval=60, shutdown_timeout=30)
            for i in range(1000):
                with llmpulse.span("work", i=i):
                    pass
            """,
            database_url,
        )
        assert _span_names(database_url) == {"work": 1000}

    def test_exit_with_a_hung_store_is_bounded(self, blackhole: int) -> None:
        """With a store that never answers, the process still exits, counting its records as dropped."""
        proc = _run(
            """
            import atexit, json, sys, llmpulse
            def report():  # registered before init, so it runs after llmpulse's exit flush
                s = llmpulse.get_client().stats()
                print(json.dumps({"lost": s.dropped_total + s.in_flight + s.queue_depth, "recorded": s.recorded}))
            atexit.register(report)
            llmpulse.init(sys.argv[1], instrument=(), shutdown_timeout=1.0)
            for i in range(100):
                llmpulse.record_llm_call("gpt-4o")
            """,
            f"postgresql://postgres@127.0.0.1:{blackhole}/test",
        )
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        assert report == {"lost": 100, "recorded": 100}  # dropped, or stuck in the hung export


class TestFork:
    def test_multiprocessing_children_flush_without_duplicates(self, database_url: str) -> None:
        """Fork-context multiprocessing children store all their spans; the parent's pending ones once."""
        _run(
            """
            import multiprocessing, sys, llmpulse
            llmpulse.init(sys.argv[1], instrument=(), flush_interval=60, shutdown_timeout=30)
            for i in range(50):                 # still queued in the parent when it forks
                with llmpulse.span("parent", i=i):
                    pass

            def work(k):
                for i in range(200):
                    with llmpulse.span("child", worker=k, i=i):
                        pass

            ctx = multiprocessing.get_context("fork")
            procs = [ctx.Process(target=work, args=(k,)) for k in range(3)]
            for p in procs:
                p.start()
            for p in procs:
                p.join()
            assert [p.exitcode for p in procs] == [0, 0, 0]
            """,
            database_url,
        )
        assert _span_names(database_url) == {"parent": 50, "child": 600}

    def test_preforked_workers_like_gunicorn(self, database_url: str) -> None:
        """init in the parent, os.fork workers that record and sys.exit: every span stored once."""
        _run(
            """
            import os, sys, llmpulse
            llmpulse.init(sys.argv[1], instrument=(), flush_interval=60, shutdown_timeout=30)
            with llmpulse.span("master-boot"):
                pass
            pids = []
            for k in range(3):
                pid = os.fork()
                if pid == 0:
                    for i in range(100):
                        with llmpulse.span("request", worker=k):
                            llmpulse.record_llm_call("gpt-4o-mini", input_tokens=5)
                    sys.exit(0)
                pids.append(pid)
            for pid in pids:
                _, status = os.waitpid(pid, 0)
                assert os.waitstatus_to_exitcode(status) == 0
            """,
            database_url,
        )
        assert _span_names(database_url) == {"master-boot": 1, "request": 300, "llm": 300}
