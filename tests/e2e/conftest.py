"""The full demo run that several e2e modules read, made once per session."""

from __future__ import annotations

import pytest

from llmpulse.demo.runner import DemoResult, DemoSettings, run_demo


@pytest.fixture(scope="session")
def full_demo(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    """One full demo run (400 tickets) into its own SQLite file. Its users only read the spans
    (the alert replay adds alert and outbox rows, which no other user reads).

    One worker: the latencies the SDK records are measured wall times, and on a loaded machine
    every call also waits for the CPU behind the process's other threads. With four workers a
    call's wait grows with the other workers' CPU (~7.6 ms per simulated call) divided by the
    share of a core the process gets: at load 12-14 on 2 cores that put ~200 ms on a 45 ms
    call (p95 ~430 ms), and the injected x5 (225 ms) drowned in it. With one worker the wait is
    the call's own CPU only (~50 ms, p95 ~165 ms at the same load) and the spike stands out.
    """
    url = f"sqlite:///{tmp_path_factory.mktemp('full-demo') / 'demo.db'}"
    return run_demo(DemoSettings(requests=400, database_url=url, workers=1, seed=7))
