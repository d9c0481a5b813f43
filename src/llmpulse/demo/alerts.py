"""Alerting over the demo: evaluate a rules file along the demo's virtual afternoon.

The demo answers hours of virtual traffic in seconds, so its alert engine cannot run beside it
in wall time. Instead, once the spans are stored, the engine is stepped through the run's
virtual timeline, one tick a minute (``AlertEngine.tick(now=t)`` reads only rollups of windows
ending at ``t``, exactly what it would have read live), and the delivery worker sends what each
tick queued to the rules file's channels for real. The incident's alerts fire while it lasts
and resolve after it; anything else that fires is a false alarm.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from llmpulse.alerting import AlertEngine, DeliveryWorker, RuleSet
from llmpulse.store import Store

if TYPE_CHECKING:
    from llmpulse.demo.runner import DemoResult
    from llmpulse.store.queries.alerts import AlertRecord

__all__ = ["AlertReplay", "replay_alerts"]

TICK_SECONDS = 60.0
#: Ticks continue this long after the last ticket, so alerts still firing can resolve.
TAIL_SECONDS = 1800.0


@dataclass
class AlertReplay:
    """What the engine did over the demo's timeline."""

    alerts: list[AlertRecord] = field(default_factory=list)
    ticks: int = 0
    delivered: int = 0
    failed: int = 0


def replay_alerts(result: DemoResult, rule_set: RuleSet) -> AlertReplay:
    """Evaluate ``rule_set`` minute by minute over the run and deliver its notifications."""
    store = Store.open(result.settings.database_url)
    now = [result.start]
    engine = AlertEngine(
        store, rule_set, clock=lambda: now[0], owner=f"demo-{uuid.uuid4().hex[:8]}"
    )
    worker = DeliveryWorker(store, rule_set.channels, owner=engine.owner)
    out = AlertReplay()
    try:
        while now[0] <= result.end + TAIL_SECONDS:
            now[0] += TICK_SECONDS
            engine.tick()
            out.ticks += 1
            while worker.run_once(limit=100).delivered:
                pass
        for _ in range(50):  # retries the receiver asked for (bounded; failures are reported)
            report = worker.run_once(limit=100)
            if not store.outbox(status="pending", limit=1):
                break
            if not (report.delivered or report.retried):
                import time

                time.sleep(0.2)
        out.delivered, out.failed = worker.totals.delivered, worker.totals.failed
        out.alerts = store.alert_page(filters={"start": result.start}, limit=1000)
        out.alerts.sort(key=lambda a: (a.fired_at, a.id))
        engine.release()
    finally:
        store.close()
    return out
