"""The durable outbox: retries with backoff, leases, ordering, and nothing lost or duplicated
across receiver outages and worker restarts (real webhook channel, real local receiver)."""

from __future__ import annotations

import pytest

from llmpulse.alerting import AlertEngine, DeliveryWorker, Rule, RuleSet
from llmpulse.alerting._notify import from_payload
from llmpulse.alerting._outbox import backoff_seconds
from llmpulse.alerting.channels import NetworkPolicy, build_channel

from .conftest import T0, Clock, Switch
from .hook import Hook, hook

LOCAL = NetworkPolicy(["127.0.0.1"])


@pytest.fixture
def recv():
    with hook() as h:
        yield h


def _setup(store, recv, clock, rules=None, **kw):
    channel = build_channel("hook", {"type": "webhook", "url": recv.url}, allow=LOCAL)
    sw = Switch()
    rules = rules or [Rule("r", type="callable", condition=sw, channels=("hook",),
                           group_by=("model",))]  # fmt: skip
    rs = RuleSet(channels={"hook": channel})
    engine = AlertEngine(store, rs, rules=rules, clock=clock, owner="eng")
    worker = DeliveryWorker(store, rs.channels, clock=clock, owner="w1", jitter=lambda: 1.0, **kw)
    return engine, worker, sw


def _delivered_once(store, recv: Hook) -> bool:
    """Every outbox row delivered, and the receiver accepted each key exactly once."""
    rows = store.outbox()
    counts = recv.ok_keys()
    statuses = {r.status for r in rows}
    once = all(counts[r.idempotency_key] == 1 for r in rows) and sum(counts.values()) == len(rows)
    return statuses == {"delivered"} and once


class TestRetries:
    def test_receiver_outage_then_each_alert_exactly_once(self, store, recv) -> None:
        """Five 500s, then 200: every notification arrives once, after the backoff."""
        clock = Clock()
        engine, worker, sw = _setup(store, recv, clock)
        for m in "abc":
            sw.set(model=m)
        engine.tick()
        recv.failures = 5
        report = worker.run_once()
        assert (report.delivered, report.retried) == (0, 3)
        [row] = {r.next_attempt_at for r in store.outbox()}
        assert row == T0 + backoff_seconds(1, 1.0)
        assert worker.run_once().delivered == 0  # not due yet: nothing is sent early
        recv.settle()
        assert len(recv.answered) == 3
        for _ in range(10):
            clock.advance(60)
            worker.run_once()
        assert _delivered_once(store, recv)
        recv.settle()
        assert len(recv.answered) == 5 + 3  # five 500s, then one success per notification
        models = sorted(p["alerts"][0]["labels"]["model"] for p in recv.ok_payloads())
        assert models == list("abc")

    def test_backoff_doubles_caps_and_honours_retry_after(self) -> None:
        """1s, 2s, 4s ... capped at 10 min; Retry-After is a floor."""
        assert [backoff_seconds(n, 1.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
        assert backoff_seconds(30, 1.0) == 600.0
        assert backoff_seconds(1, 0.0) == 0.5
        assert backoff_seconds(1, 1.0, retry_after=2.0) == 2.0

    def test_429_retry_after_is_waited(self, store, recv) -> None:
        """A 429 with Retry-After: 2 is retried no sooner than 2 s and is not permanent."""
        clock = Clock()
        engine, worker, sw = _setup(store, recv, clock)
        sw.set(model="a")
        engine.tick()
        recv.failures, recv.fail_status, recv.retry_after = 1, 429, "2"
        assert worker.run_once().retried == 1
        clock.advance(1.9)
        assert worker.run_once().delivered == 0
        clock.advance(0.1)
        assert worker.run_once().delivered == 1

    def test_permanent_failure_does_not_block_the_group(self, store, recv) -> None:
        """A 400 marks the row failed (counted); the group's next notification still goes."""
        clock = Clock()
        engine, worker, sw = _setup(store, recv, clock)
        sw.set(model="a")
        engine.tick()
        recv.failures, recv.fail_status = 1, 400
        assert worker.run_once().failed == 1
        sw.set(None, model="a")
        clock.advance(30)
        engine.tick()
        assert worker.run_once().delivered == 1
        assert [r.status for r in store.outbox()] == ["failed", "delivered"]
        assert "400" in (store.outbox()[0].last_error or "")

    def test_resolved_never_overtakes_firing(self, store, recv) -> None:
        """While the firing notice is retried, the group's resolved notice waits behind it."""
        clock = Clock()
        engine, worker, sw = _setup(store, recv, clock)
        sw.set(model="a")
        engine.tick()
        recv.failures, recv.fail_status = 1, 503
        worker.run_once()
        sw.set(None, model="a")
        engine.tick()
        assert worker.run_once().delivered == 0  # the resolved row is not due before its firing row
        clock.advance(5)
        while store.outbox(status="pending"):
            worker.run_once()
            clock.advance(5)
        recv.settle()
        statuses = [(body["status"], status) for _, status, body in recv.answered]
        assert statuses == [("firing", 503), ("firing", 200), ("resolved", 200)]


class TestLeases:
    def test_two_workers_send_each_notification_once(self, store, recv) -> None:
        """Two workers on one outbox, a receiver failing then recovering: one delivery per row."""
        clock = Clock()
        engine, w1, sw = _setup(store, recv, clock)
        w2 = DeliveryWorker(store, w1.channels, clock=clock, owner="w2", jitter=lambda: 1.0)
        for m in "abcdef":
            sw.set(model=m)
        engine.tick()
        recv.failures = 4
        for _ in range(20):
            w1.run_once(limit=2)
            w2.run_once(limit=2)
            clock.advance(10)
        assert _delivered_once(store, recv)
        assert w1.totals.delivered + w2.totals.delivered == 6

    def test_resolved_committed_before_a_crash_is_delivered_after_restart(
        self, store, recv
    ) -> None:
        """The resolve commits its notice with it; a worker started after a crash sends it."""
        clock = Clock()
        engine, worker, sw = _setup(store, recv, clock)
        sw.set(model="a")
        engine.tick()
        worker.run_once()
        sw.set(None, model="a")
        engine.tick()  # ...and the process dies before any worker runs
        restarted = DeliveryWorker(store, worker.channels, clock=clock, owner="w-new")
        assert restarted.run_once().delivered == 1
        assert [p["status"] for p in recv.ok_payloads()] == ["firing", "resolved"]

    def test_crash_after_send_resends_with_same_key_after_lease(self, store, recv) -> None:
        """A worker that sent but died before recording: resent once, same key, after the lease."""
        clock = Clock()
        engine, worker, sw = _setup(store, recv, clock, lease_seconds=120)
        sw.set(model="a")
        engine.tick()
        [row] = store.claim_outbox("dead-worker", clock.now, lease_s=120)
        worker.channels["hook"].send(from_payload(row.payload))  # ...and it dies here
        assert worker.run_once().delivered == 0  # still leased by the dead worker
        clock.advance(120)
        assert worker.run_once().delivered == 1
        assert recv.ok_keys() == {row.idempotency_key: 2}


class TestRetention:
    def test_finished_rows_are_pruned_pending_ones_kept(self, store, recv) -> None:
        """Delivered rows older than two weeks are deleted; an undelivered one is not: it is
        given up (failed, kept to look into) after a day of retries, and pruned two weeks later."""
        from llmpulse.alerting._outbox import KEEP_FINISHED_SECONDS

        clock = Clock()
        engine, worker, sw = _setup(store, recv, clock)
        sw.set(model="a")
        engine.tick()
        worker.run_once()
        recv.failures = 10**6  # the receiver is down from now on
        sw.set(model="b")
        clock.advance(30)
        engine.tick()
        worker.run_once()
        assert [r.status for r in store.outbox()] == ["delivered", "pending"]
        clock.advance(KEEP_FINISHED_SECONDS + 3600)
        worker.run_once()
        assert [r.status for r in store.outbox()] == ["failed"]
        clock.advance(KEEP_FINISHED_SECONDS + 3600)
        worker.run_once()
        assert store.outbox() == []
