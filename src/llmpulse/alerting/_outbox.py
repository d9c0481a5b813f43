"""The delivery worker: sends outbox rows through their channels, at least once.

Each row was committed with the alert change it reports, so nothing to send can be lost by a
crash of the engine. The worker:

1. **leases** due rows (a conditional update: of several workers only one gets a row, and only
   the oldest pending row of each (channel, group), so a resolved notice never overtakes its
   firing notice);
2. **sends** the notification (``Channel.send``), whose ``idempotency_key`` is the row's;
3. **records** the outcome: delivered; or, for a retryable failure, the next attempt after an
   exponential backoff with jitter (base ``BASE_BACKOFF_SECONDS``, doubling, at most
   ``MAX_BACKOFF_SECONDS``, never sooner than the receiver's ``Retry-After``); a permanent
   failure (a 4xx, a blocked address) or a row older than ``MAX_AGE_SECONDS`` is marked failed.

A worker that dies between 2 and 3 leaves the row leased; when the lease ends
(``lease_seconds``, longer than any send may take) another worker, or the restarted one, sends it
again with the same idempotency key. That resend is the only duplicate the outbox makes, and the
receiver can drop it by the key (at-least-once, as Alertmanager promises).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from llmpulse.alerting._notify import from_payload
from llmpulse.alerting.channels import DeliveryError

if TYPE_CHECKING:
    from llmpulse.alerting.channels import Channel
    from llmpulse.store import Store
    from llmpulse.store.queries.alerts import OutboxRecord

__all__ = ["DeliveryReport", "DeliveryWorker", "backoff_seconds"]

log = logging.getLogger("llmpulse.alerting.outbox")

BASE_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 600.0
#: A notification still undelivered after a day is given up (and counted as failed).
MAX_AGE_SECONDS = 86400.0
#: Delivered and failed rows are kept this long (to look into), then deleted by the worker.
KEEP_FINISHED_SECONDS = 14 * 86400.0
_PRUNE_EVERY_SECONDS = 3600.0
#: Longer than any channel's send timeout, so a slow send is never re-sent concurrently.
DEFAULT_LEASE_SECONDS = 120.0


def backoff_seconds(attempts: int, jitter: float, retry_after: float | None = None) -> float:
    """Wait before attempt ``attempts + 1``: ``base * 2**(attempts-1)`` capped, times
    ``jitter`` in [0.5, 1], and never less than ``retry_after``."""
    wait = min(MAX_BACKOFF_SECONDS, BASE_BACKOFF_SECONDS * 2.0 ** max(0, attempts - 1))
    wait *= 0.5 + 0.5 * min(max(jitter, 0.0), 1.0)
    return max(wait, retry_after or 0.0)


@dataclass
class DeliveryReport:
    """What one pass of the worker did."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0
    lost_lease: int = 0
    errors: list[str] = field(default_factory=list)


class DeliveryWorker:
    """Delivers outbox rows through ``channels`` (by name).

    worker = DeliveryWorker(store, rule_set.channels)
    worker.run_once()     # sends what is due now; call it in a loop
    """

    def __init__(
        self,
        store: Store,
        channels: Mapping[str, Channel],
        *,
        clock: Callable[[], float] = time.time,
        owner: str,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.store = store
        self.channels = channels
        self.clock = clock
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.jitter = jitter
        self.totals = DeliveryReport()
        self._pruned_at: float | None = None

    def recover(self) -> int:
        """At start: rows this owner leased before it died are sendable again at once.

        Only safe when ``owner`` names this process alone (``--owner``); otherwise a lease ends
        by itself after ``lease_seconds``. Returns how many rows were freed.
        """
        freed = self.store.release_outbox_leases(self.owner)
        if freed:
            log.info("Recovered %d notifications leased by a previous run of %s", freed, self.owner)
        return freed

    def run_once(self, limit: int = 20) -> DeliveryReport:
        """Lease and attempt every due row (up to ``limit``); returns what happened."""
        report = DeliveryReport()
        self._prune()
        rows = self.store.claim_outbox(
            self.owner, self.clock(), lease_s=self.lease_seconds, limit=limit
        )
        for row in rows:
            self._attempt(row, report)
        for name in ("delivered", "retried", "failed", "lost_lease"):
            setattr(self.totals, name, getattr(self.totals, name) + getattr(report, name))
        return report

    def _prune(self) -> None:
        """Once an hour, delete finished rows older than ``KEEP_FINISHED_SECONDS``."""
        now = self.clock()
        if self._pruned_at is not None and now - self._pruned_at < _PRUNE_EVERY_SECONDS:
            return
        self._pruned_at = now
        deleted = self.store.prune_outbox(now - KEEP_FINISHED_SECONDS)
        if deleted:
            log.info("Deleted %d finished notifications older than %d days", deleted,
                     KEEP_FINISHED_SECONDS // 86400)  # fmt: skip

    def _attempt(self, row: OutboxRecord, report: DeliveryReport) -> None:
        channel = self.channels.get(row.channel)
        if channel is None:
            self._finish(row, report, "failed", f"channel {row.channel!r} is not configured")
            return
        try:
            channel.send(from_payload(row.payload))
        except DeliveryError as exc:
            self._failed(row, report, str(exc), exc.retryable, exc.retry_after)
            return
        except Exception as exc:  # a channel bug: retry, it may be transient
            self._failed(row, report, f"{type(exc).__name__}: {exc}", True, None)
            return
        self._finish(row, report, "delivered", None)

    def _failed(
        self,
        row: OutboxRecord,
        report: DeliveryReport,
        error: str,
        retryable: bool,
        retry_after: float | None,
    ) -> None:
        now = self.clock()
        if not retryable or now - row.created_at >= MAX_AGE_SECONDS:
            self._finish(row, report, "failed", error)
            return
        wait = backoff_seconds(row.attempts, self.jitter(), retry_after)
        if self.store.finish_outbox(
            row.id, self.owner, status="pending", at=now, error=error, next_attempt_at=now + wait
        ):
            report.retried += 1
            log.info("Delivery to %s failed (attempt %d), retry in %.1fs: %s",
                     row.channel, row.attempts, wait, error)  # fmt: skip
        else:
            report.lost_lease += 1

    def _finish(
        self, row: OutboxRecord, report: DeliveryReport, status: str, error: str | None
    ) -> None:
        if not self.store.finish_outbox(
            row.id, self.owner, status=status, at=self.clock(), error=error
        ):
            report.lost_lease += 1
            return
        if status == "delivered":
            report.delivered += 1
        else:
            report.failed += 1
            report.errors.append(f"{row.channel}: {error}")
            log.warning("Notification %s to %s failed for good: %s",
                        row.idempotency_key, row.channel, error)  # fmt: skip
