"""A Store used across fork(): the child gets its own writer locks and connections.

Each scenario runs in a fresh interpreter (a subprocess), as a preforking server would, and
forks from there. The timeouts inside the scripts only detect hangs; nothing is timed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from llmpulse.store import Store

HANG = 120  # seconds after which a scenario is considered hung

_PRELUDE = """
import json, os, sys, threading
from llmpulse.schema import Span
from llmpulse.store import Store

T0 = 1_700_000_000.0

def spans(who, n=20):
    return [Span(trace_id=who, span_id=f"{who}-{i}", name=who, kind="llm", model="m",
                 start_time=T0 + i, end_time=T0 + i + 0.5, input_tokens=2, output_tokens=1)
            for i in range(n)]

def write_or_report_stuck(store, who):
    # The write runs on a thread so that a child stuck on an inherited lock says so and
    # exits, instead of hanging the test.
    done = []
    worker = threading.Thread(target=lambda: done.append(store.write(spans=spans(who)).spans))
    worker.start()
    worker.join(60)
    return done[0] if done else "stuck"
"""


def _run(script: str, url: str) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(_PRELUDE) + textwrap.dedent(script), url],
        capture_output=True, text=True, timeout=HANG,
    )  # fmt: skip
    assert proc.returncode == 0, f"scenario failed:\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _names(url: str) -> dict[str, int]:
    with Store.open(url) as store:
        stats = store.span_stats(1_700_000_000 - 60, 1_700_000_000 + 3600, group_by=("name",))
    return {str(s.group["name"]): s.calls for s in stats}


class TestForkedChild:
    def test_writer_lock_held_by_a_thread_at_fork(self, sqlite_url: str) -> None:
        """A thread holds the store's writer lock while the parent forks; the child can still write."""
        result = _run(
            """
            from llmpulse.store import _process
            _process.FORK_WAIT_SECONDS = 0.2  # give up waiting for the lock soon: it stays held
            store = Store.open(sys.argv[1])
            lock = _process.writer_lock(_process.writer_lock_key(store._engine))
            inside, leave = threading.Event(), threading.Event()

            def hold():
                with lock:
                    inside.set()
                    leave.wait(60)

            holder = threading.Thread(target=hold)
            holder.start()
            inside.wait(60)
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.write(write, json.dumps(write_or_report_stuck(store, "child")).encode())
                os._exit(0)
            child = json.loads(os.read(read, 1024))
            os.waitpid(pid, 0)
            leave.set()
            holder.join()
            print(json.dumps({"child": child, "parent": write_or_report_stuck(store, "parent")}))
            """,
            sqlite_url,
        )
        assert result == {"child": 20, "parent": 20}
        assert _names(sqlite_url) == {"child": 20, "parent": 20}

    def test_fork_waits_for_a_write_in_progress(self, sqlite_url: str) -> None:
        """A fork in the middle of another thread's write waits for it, so the child can write."""
        result = _run(
            """
            import time
            store = Store.open(sys.argv[1])
            inside = threading.Event()

            def write_slowly():  # a write transaction still open when the main thread forks
                with store._write_tx():
                    inside.set()
                    time.sleep(0.3)

            writer = threading.Thread(target=write_slowly)
            writer.start()
            inside.wait(60)
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.write(write, json.dumps(write_or_report_stuck(store, "child")).encode())
                os._exit(0)
            writer.join()
            child = json.loads(os.read(read, 1024))
            os.waitpid(pid, 0)
            print(json.dumps({"child": child, "parent": write_or_report_stuck(store, "parent")}))
            """,
            sqlite_url,
        )
        assert result == {"child": 20, "parent": 20}

    def test_children_and_parent_write_through_one_store(self, database_url: str) -> None:
        """Forked children writing through the parent's Store use their own connections: no errors."""
        result = _run(
            """
            store = Store.open(sys.argv[1])
            held = [store._engine.connect() for _ in range(3)]  # pooled connections to inherit
            for conn in held:
                conn.close()
            pids = []
            for k in range(3):
                pid = os.fork()
                if pid == 0:
                    try:
                        for r in range(5):
                            assert store.write(spans=spans(f"child{k}-{r}")).spans == 20
                    except BaseException as exc:
                        print(f"child {k}: {type(exc).__name__}: {exc}", file=sys.stderr)
                        os._exit(1)
                    os._exit(0)
                pids.append(pid)
            for r in range(5):
                store.write(spans=spans(f"parent-{r}"))
            codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids]
            print(json.dumps({"codes": codes}))
            """,
            database_url,
        )
        assert result == {"codes": [0, 0, 0]}
        names = _names(database_url)
        assert len(names) == 20 and set(names.values()) == {20}
