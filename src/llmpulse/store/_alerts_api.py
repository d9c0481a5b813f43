"""The alerting part of ``Store``: one transaction per engine tick, rules, silences, outbox."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from llmpulse.store._connections import StoreConnections
from llmpulse.store.queries import alerts
from llmpulse.store.queries.alerts import AlertRecord, AlertTx, OutboxRecord, SilenceRecord

__all__ = ["AlertsApiMixin"]


class AlertsApiMixin(StoreConnections):
    """Alert state, history, silences, rules, the outbox and leases; mixed into ``Store``."""

    @contextmanager
    def alert_transaction(self) -> Iterator[AlertTx]:
        """One write transaction over the alerting tables: all of it commits, or none."""
        try:
            with self._write_tx(1) as conn:
                yield AlertTx(conn)
        except SQLAlchemyError as exc:
            raise self._error("alert transaction", exc) from exc

    def alert_page(
        self, *, filters: Mapping[str, Any], after: Sequence[Any] | None = None, limit: int = 100
    ) -> list[AlertRecord]:
        """Incidents newest first; filters model, severity, rule, state, active_only, start, end."""
        with self._read("alert_page") as conn:
            return alerts.alert_page(conn, filters, after, limit)

    def get_alert(self, alert_id: int) -> AlertRecord | None:
        """One incident by id, or ``None``."""
        with self._read("get_alert") as conn:
            return AlertTx(conn).get_alert(alert_id)

    def alert_history(self, alert_id: int) -> list[tuple[float, str, str | None, str | None]]:
        """``(at, kind, who, note)`` of what happened to one incident, oldest first."""
        with self._read("alert_history") as conn:
            return alerts.alert_events(conn, alert_id)

    def alert_statistics(self, since: float) -> dict[str, Any]:
        """Counts by severity, rule and state of incidents fired since ``since``; MTTA, MTTR."""
        with self._read("alert_statistics") as conn:
            return alerts.statistics(conn, since)

    # -- rules -----------------------------------------------------------------------------

    def list_alert_rules(self) -> list[tuple[str, dict[str, Any], str, float, float]]:
        """``(name, spec, source, created_at, updated_at)`` of every stored rule."""
        with self._read("list_alert_rules") as conn:
            return alerts.list_rules(conn)

    def put_alert_rule(self, name: str, spec: Mapping[str, Any], *, source: str, at: float) -> bool:
        """Insert or replace a stored rule; ``True`` when it is new."""
        with self._writing("put_alert_rule") as conn:
            return alerts.put_rule(conn, name, spec, source, at)

    def delete_alert_rule(self, name: str) -> bool:
        """Delete a stored rule; ``False`` when there was none."""
        with self._writing("delete_alert_rule") as conn:
            return alerts.delete_rule(conn, name)

    # -- silences --------------------------------------------------------------------------

    def add_silence(self, silence: SilenceRecord) -> None:
        """Store a silence."""
        with self._writing("add_silence") as conn:
            alerts.insert_silence(conn, silence)

    def list_silences(self, now: float, *, include_expired: bool = False) -> list[SilenceRecord]:
        """Silences that have not ended at ``now`` (or all of them)."""
        with self._read("list_silences") as conn:
            return alerts.list_silences(conn, now, include_expired)

    def expire_silence(self, silence_id: str, now: float) -> SilenceRecord | None:
        """End a silence at ``now``; ``None`` when there is no such silence."""
        with self._writing("expire_silence") as conn:
            return alerts.expire_silence(conn, silence_id, now)

    # -- outbox and leases -----------------------------------------------------------------

    def claim_outbox(
        self, owner: str, now: float, *, lease_s: float, limit: int = 20
    ) -> list[OutboxRecord]:
        """Lease due notifications for delivery (see ``queries.alerts.claim_outbox``)."""
        with self._writing("claim_outbox", limit) as conn:
            return alerts.claim_outbox(conn, owner, now, lease_s, limit)

    def finish_outbox(
        self,
        row_id: int,
        owner: str,
        *,
        status: str,
        at: float,
        error: str | None = None,
        next_attempt_at: float | None = None,
    ) -> bool:
        """Record the outcome of a delivery attempt; ``False`` when the lease was lost."""
        with self._writing("finish_outbox") as conn:
            return alerts.finish_outbox(
                conn, row_id, owner, status=status, at=at, error=error,
                next_attempt_at=next_attempt_at,
            )  # fmt: skip

    def release_outbox_leases(self, owner: str) -> int:
        """Free the outbox rows ``owner`` had leased (after a restart under the same owner)."""
        with self._writing("release_outbox_leases") as conn:
            return alerts.release_outbox_leases(conn, owner)

    def prune_outbox(self, before: float) -> int:
        """Delete finished (delivered or failed) outbox rows queued before ``before``."""
        with self._writing("prune_outbox") as conn:
            return alerts.prune_outbox(conn, before)

    def outbox(self, *, status: str | None = None, limit: int = 1000) -> list[OutboxRecord]:
        """Outbox rows (of one status), oldest first."""
        with self._read("outbox") as conn:
            return alerts.outbox_rows(conn, status, limit)

    def take_lease(self, name: str, owner: str, *, now: float, ttl: float) -> bool:
        """Take or renew a named lease (one alert evaluator per database); ``False`` if held."""
        try:
            with self._write_tx(1) as conn:
                return alerts.take_lease(conn, name, owner, now, ttl)
        except IntegrityError:  # another process inserted the lease row first
            return False
        except SQLAlchemyError as exc:
            raise self._error("take_lease", exc) from exc

    def lease_renewed_at(self, name: str) -> float | None:
        """When a named lease was last taken or renewed, by whichever holder; ``None`` if never."""
        with self._read("lease") as conn:
            return alerts.lease_renewed_at(conn, name)

    def release_lease(self, name: str, owner: str) -> None:
        """Give up a lease this owner holds."""
        with self._writing("release_lease") as conn:
            alerts.release_lease(conn, name, owner)
