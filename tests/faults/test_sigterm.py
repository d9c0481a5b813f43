"""SIGTERM (every `docker stop`, every `kill`) after 1,000 calls: nothing is lost silently.

Each test runs a real Python process that records into a real store (SQLite and PostgreSQL),
stops it with SIGTERM, and counts what the database holds.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from llmpulse.store import Store
from tests.faults._accounting import stored_rows

HANG = 120.0
CALLS = 1000

# argv: database URL, where the application's handler is installed: none / before / after init
_APP = textwrap.dedent(
    """
    import signal, sys, time
    import llmpulse

    def app_handler(signum, frame):
        print("app handler ran", flush=True)
        sys.exit(7)

    CALLS, HANG = int(sys.argv[3]), float(sys.argv[4])
    where = sys.argv[2]
    if where == "before":
        signal.signal(signal.SIGTERM, app_handler)
    llmpulse.init(sys.argv[1], instrument=(), shutdown_timeout=60, batch_size=100_000,
                  flush_interval=3600)
    if where == "after":
        signal.signal(signal.SIGTERM, app_handler)
    for i in range(CALLS):
        llmpulse.record_llm_call("gpt-4o-mini", input_tokens=i, output_tokens=1)
    print("ready", flush=True)
    # Wait in short sleeps, as a real application's loop does. One long time.sleep(HANG) raced
    # with the test's SIGTERM, sent the moment "ready" is read: a signal landing between
    # CPython's last check for pending signals and the start of the sleep's clock_nanosleep
    # does not interrupt it, so no Python handler (ours included) runs until the sleep ends —
    # a 120 s "hang" in about 1 run of 8 (5 of 40 measured; 0 of 40 with short sleeps).
    end = time.monotonic() + HANG
    while time.monotonic() < end:
        time.sleep(0.05)
    print("not stopped", flush=True)
    """
)


def _run_and_terminate(database_url: str, where: str, tmp_path: Path) -> tuple[int, str, str]:
    script = tmp_path / "app.py"
    script.write_text(_APP)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, str(script), database_url, where, str(CALLS), str(HANG)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "ready", line + (proc.stderr.read() if proc.stderr else "")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=HANG)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        # A failed run must not leave its pipes for a later test's gc to report as unclosed.
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    return proc.returncode, out, err


def _lost_in_warning(stderr: str) -> int:
    """How many records the SDK's shutdown warning says were lost (0 if it says nothing)."""
    found = re.search(r"Shutdown: ([\d,]+) of ([\d,]+) records recorded were not stored", stderr)
    return int(found.group(1).replace(",", "")) if found else 0


class TestSigterm:
    def test_default_action_flushes_then_dies_of_sigterm(
        self, database_url: str, store: Store, tmp_path: Path
    ) -> None:
        """No handler of the application: every record is stored (or the warning counts the
        missing ones), and the process still ends as SIGTERM ends it."""
        code, _, err = _run_and_terminate(database_url, "none", tmp_path)
        assert code == -signal.SIGTERM, err
        stored = stored_rows(store)
        assert stored + _lost_in_warning(err) == CALLS, err
        assert stored == CALLS, err  # a healthy store takes 1,000 rows well within 60 s

    def test_the_applications_handler_still_runs(self, sqlite_url: str, tmp_path: Path) -> None:
        """A handler installed before init() runs after the flush, and decides the exit."""
        code, out, err = _run_and_terminate(sqlite_url, "before", tmp_path)
        assert code == 7 and "app handler ran" in out, err
        with Store.open(sqlite_url) as store:
            assert stored_rows(store) == CALLS, err

    def test_a_handler_installed_later_replaces_ours(self, sqlite_url: str, tmp_path: Path) -> None:
        """A handler installed after init() is the one that runs; its sys.exit flushes at exit."""
        code, out, err = _run_and_terminate(sqlite_url, "after", tmp_path)
        assert code == 7 and "app handler ran" in out, err
        with Store.open(sqlite_url) as store:
            assert stored_rows(store) == CALLS, err


class TestInstallation:
    def test_init_off_the_main_thread_leaves_signals_alone(self, tmp_path: Path) -> None:
        """Only the main thread may install signal handlers: init() elsewhere installs none."""
        code = textwrap.dedent(
            """
            import signal, threading, llmpulse
            from llmpulse.testing import InMemoryExporter
            t = threading.Thread(target=lambda: llmpulse.init(exporter=InMemoryExporter(),
                                                              instrument=()))
            t.start(); t.join()
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
            llmpulse.init(exporter=InMemoryExporter(), instrument=())  # main thread: now
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
            print("ok")
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG
        )
        assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr

    def test_ignored_sigterm_stays_ignored(self) -> None:
        """An application that ignores SIGTERM keeps ignoring it."""
        code = textwrap.dedent(
            """
            import os, signal, time, llmpulse
            from llmpulse.testing import InMemoryExporter
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            llmpulse.init(exporter=InMemoryExporter(), instrument=())
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGTERM)
            print("still here")
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG
        )
        assert done.returncode == 0 and done.stdout.strip() == "still here", done.stderr
