"""The checks of detection rules in a child process: the same findings as in-process, a killed
child replaced, no child left behind by a runner's stop or by a killed parent; and under
AlertRunner both the first run of a pair and its refreshes go to the child."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from llmpulse.alerting import AlertEngine, AlertRunner, RuleSet, parse_rule
from llmpulse.alerting._checks_process import CHILD_NICENESS, ChecksProcess
from llmpulse.alerting._query import run_checks
from llmpulse.errors import StoreError
from llmpulse.store import Store
from tests.unit.checks.traffic import Incident, Traffic, make_spans

from .conftest import signal_refreshes, wait_for_first_report

T0 = 1_700_000_000.0
MIN = 60.0
NOW = T0 + 150 * MIN  # gpt-4o three times slower from 2:00 to 2:30: a latency spike
PAIR = (3600.0, 5400.0)
ROOT = Path(__file__).resolve().parents[3]


def _traffic() -> Traffic:
    return Traffic(T0, 240, seed=1, incidents=(Incident(T0 + 120 * MIN, T0 + 150 * MIN,
                                                        latency_x=3.0),))  # fmt: skip


@pytest.fixture
def incident_store(store: Store) -> Store:
    """Four hours of two-model traffic with a latency incident, on SQLite and PostgreSQL."""
    assert store.write(spans=make_spans(_traffic())).rejected == 0
    return store


def _ended(pid: int) -> bool:
    """Whether process ``pid`` is gone (or a zombie nobody collected: it no longer runs)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


def _dicts(findings: list) -> list[dict]:
    return [f.to_dict() for f in findings]


class TestChecksProcess:
    def test_same_findings_as_in_process_from_another_process(self, incident_store) -> None:
        """The child opens the store by its URL and answers with the findings run_checks gives
        here, at a lower priority than ours; close() ends it."""
        checks = ChecksProcess.for_store(incident_store)
        assert checks is not None
        try:
            found = checks(NOW, *PAIR)
            pid = checks.pid
            assert pid is not None and pid != os.getpid()
            ours = os.getpriority(os.PRIO_PROCESS, 0)
            assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, ours + CHILD_NICENESS)
        finally:
            checks.close()
        expected = run_checks(incident_store, NOW, *PAIR)
        assert any(f.check == "latency_spike" for f in expected)
        assert _dicts(found) == _dicts(expected) and checks.runs == 1
        assert checks.pid is None and _ended(pid)
        with pytest.raises(StoreError, match="closed"):
            checks(NOW, *PAIR)

    def test_a_killed_child_is_replaced(self, incident_store) -> None:
        """A child that died is noticed at the next run (which may fail, saying so) and the run
        after it starts a new child."""
        checks = ChecksProcess.for_store(incident_store)
        assert checks is not None
        try:
            checks(NOW, *PAIR)
            first = checks.pid
            assert first is not None
            os.kill(first, signal.SIGKILL)
            try:
                found = checks(NOW, *PAIR)
            except StoreError as exc:
                assert "ended during a run" in str(exc)
                found = checks(NOW, *PAIR)
            assert checks.pid not in (None, first)
        finally:
            checks.close()
        assert _dicts(found) == _dicts(run_checks(incident_store, NOW, *PAIR))

    def test_an_error_in_the_checks_comes_back_and_the_child_stays(self, tmp_path) -> None:
        """A store the child cannot read (no schema) gives a StoreError naming the failure; the
        same child answers the next request."""
        url = f"sqlite:///{tmp_path / 'empty.db'}"
        with Store.open(url, migrate=False) as store:
            checks = ChecksProcess.for_store(store)
            assert checks is not None
            try:
                for _ in range(2):
                    with pytest.raises(StoreError, match="checks failed"):
                        checks(NOW, *PAIR)
                    pid = checks.pid
                    assert pid is not None
                assert checks.pid == pid and checks.runs == 0
            finally:
                checks.close()

    def test_an_in_memory_store_keeps_its_checks_in_process(self) -> None:
        """No other process can open an in-memory SQLite database: no checks process for it."""
        with Store.open("sqlite://") as store:
            assert store.shared_url() is None
            assert ChecksProcess.for_store(store) is None

    def test_the_child_exits_when_its_parent_is_killed(self, sqlite_url) -> None:
        """A parent killed without closing leaves no checks process running: the child reads
        the end of its pipe and exits."""
        with Store.open(sqlite_url) as store:
            assert store.write(spans=make_spans(_traffic())).rejected == 0
        script = textwrap.dedent(f"""
            import sys, threading
            from llmpulse.alerting._checks_process import CHILD_NICENESS, ChecksProcess
            from llmpulse.store import Store
            checks = ChecksProcess.for_store(Store.open({sqlite_url!r}))
            checks({NOW!r}, {PAIR[0]!r}, {PAIR[1]!r})
            print(checks.pid, flush=True)
            threading.Event().wait()
        """)  # fmt: skip
        with subprocess.Popen([sys.executable, "-c", script], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True) as parent:  # fmt: skip
            try:
                assert parent.stdout is not None
                child = int(parent.stdout.readline())
                assert not _ended(child)
            finally:
                parent.kill()
        until = time.monotonic() + 60  # a bound on the wait, not a timing assertion
        while not _ended(child) and time.monotonic() < until:
            threading.Event().wait(0.05)
        assert _ended(child)


class TestRunnerChecksProcess:
    def test_first_run_and_refresh_in_the_child_and_stop_ends_it(self, incident_store) -> None:
        """Under AlertRunner a pair never run is run (in the child) before the first tick uses
        it; an aged pair is renewed by the child too; stop() ends the child."""
        now = [NOW]
        rule = parse_rule({"name": "spikes", "type": "detection", "window": "1h",
                           "baseline": "90m", "checks": ["latency_spike"],
                           "filters": {"model": "gpt-4o"}})  # fmt: skip
        engine = AlertEngine(incident_store, RuleSet(), rules=[rule], clock=lambda: now[0])
        runner = AlertRunner(engine, None, interval_seconds=3600)
        renewed = signal_refreshes(engine)
        runner.start()  # its first tick runs the pair (never run before)
        checks = runner.checks_process
        try:
            assert checks is not None and engine.checks is checks
            wait_for_first_report(runner, 120)
            assert runner.last_report is not None and runner.last_report.fired == 1
            assert checks.runs == 1
            pid = checks.pid
            assert pid is not None and pid != os.getpid()
            now[0] = T0 + 240 * MIN  # quiet again: the tick serves the aged spike
            runner.tick_once()
            assert runner.last_report.resolved == 0
            assert renewed.wait(120)
            assert checks.runs == 2 and checks.pid == pid
            runner.tick_once()  # acts on the renewed findings
            assert runner.last_report.resolved == 1
        finally:
            runner.stop()
        assert runner.checks_process is None and engine.checks is None
        assert checks.pid is None and _ended(pid)
