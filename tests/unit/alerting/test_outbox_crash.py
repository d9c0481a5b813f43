"""SIGKILL the real ``llmpulse alerts run`` process at random points of delivery, 30 times,
on SQLite and on PostgreSQL (each run a process forked from one that imported the CLI once).

After every restart nothing is lost (firing and resolved notices), and a notification reaches
the receiver twice only when the kill fell between the receiver's answer and the worker
recording it; the resend carries the same idempotency key. The test counts those cases.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter

import pytest

from llmpulse.schema import MetricPoint
from llmpulse.store import Store

from .hook import hook
from .warm_cli import WarmCli

KILLS = 30
KEYS = [f"k{i}" for i in range(6)]


def _rules(path, url: str) -> None:
    path.write_text(f"""\
channels:
  hook: {{type: webhook, url: "{url}", timeout: 5s}}
rules:
  - name: toggle
    metric: point
    point: {{name: toggle, aggregate: last}}
    by: [key]
    window: 1d
    condition: ">="
    critical: 1
    group_by: [key]
    channels: [hook]
""")


def _start(cli: WarmCli, url: str, rules) -> int:
    # The command forks from an interpreter that imported it once (warm_cli): the 31 runs do
    # not each pay Python's start and the imports, which the test does not exercise. The random
    # kill point counts from the moment the engine is about to run, as it would after a fork.
    pid, line = cli.start("alerts", "run", "--rules", str(rules), "--database-url", url,
                          "--allow-network", "127.0.0.1", "--interval", "0.2",
                          "--owner", "crash-test", "--lease-seconds", "5")  # fmt: skip
    assert line.startswith("evaluating"), line
    return pid


def _wait_settled(store: Store, deadline: float) -> None:
    while time.monotonic() < deadline:
        if not store.outbox(status="pending"):
            return
        time.sleep(0.1)
    raise AssertionError(f"outbox not drained: {store.outbox(status='pending')}")


@pytest.mark.slow
def test_sigkill_during_delivery_loses_nothing(database_url: str, tmp_path) -> None:
    """30 SIGKILLs at random moments: every alert's firing and resolved notice arrives, and
    duplicates equal the kills that fell between answer and recording, same key each time."""
    rng = random.Random(14)
    store = Store.open(database_url)
    between: Counter[str] = Counter()  # key -> kills that fell between answer and recording
    with hook() as h, WarmCli() as cli:
        h.delay_s = 0.02
        rules = tmp_path / "rules.yaml"
        _rules(rules, h.url)
        state = dict.fromkeys(KEYS, 0)
        for cycle in range(KILLS):
            flips = rng.sample(KEYS, 3)
            for k in flips:
                state[k] = 1 - state[k]
            store.write(points=[MetricPoint("toggle", float(state[k]), time.time(), {"key": k})
                                for k in flips])  # fmt: skip
            pid = _start(cli, database_url, rules)
            time.sleep(rng.uniform(0.0, 0.8))
            os.kill(pid, signal.SIGKILL)
            assert cli.wait() == -signal.SIGKILL
            time.sleep(0.1)  # let the receiver finish answering what it had
            recorded = {r.idempotency_key for r in store.outbox(status="delivered")}
            for key, n in h.ok_keys().items():
                # answered more often than resent so far, and not recorded: this kill's case
                if key not in recorded and n > between[key]:
                    between[key] += 1
            del cycle
        # the last run: let it evaluate the final state and drain the outbox
        pid = _start(cli, database_url, rules)
        try:
            time.sleep(1.0)
            _wait_settled(store, time.monotonic() + 60)
            time.sleep(0.6)  # one more evaluation: nothing new must be pending
            _wait_settled(store, time.monotonic() + 30)
        finally:
            os.kill(pid, signal.SIGTERM)
            cli.wait()
        ok = h.ok_keys()
        payloads = h.ok_payloads()
    rows = store.outbox()
    alerts = store.alert_page(filters={}, limit=1000)
    store.close()
    # Nothing lost: every row delivered; every incident's firing notice and (if it ended)
    # resolved notice reached the receiver.
    assert rows and {r.status for r in rows} == {"delivered"}
    seen = {(a["evidence"]["alert_id"], a["status"]) for p in payloads for a in p["alerts"]}
    for a in alerts:
        assert (a.id, "firing") in seen, a
        if a.state == "resolved":
            assert (a.id, "resolved") in seen, a
    firing_now = {a.labels["key"] for a in alerts if a.state == "firing"}
    assert firing_now == {k for k, v in state.items() if v}
    # Duplicates only where a kill fell between the answer and its recording, same key.
    duplicates = {k: n - 1 for k, n in ok.items() if n > 1}
    assert duplicates == {k: n for k, n in between.items() if n}
    assert all(ok[r.idempotency_key] == 1 + between[r.idempotency_key] for r in rows)
    print(f"\n{KILLS} kills, {len(rows)} notifications, {len(alerts)} incidents, "
          f"{sum(between.values())} kills between answer and recording (each resent once)")  # fmt: skip
