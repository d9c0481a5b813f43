"""The alerting tables: series state, incidents, history, silences, rules and the outbox.

:class:`AlertTx` is one write transaction of the alert engine: everything a tick (or an
acknowledgement) changes, including the outbox rows of the notifications it causes, commits
together or not at all. That is what makes the outbox durable: a notification exists exactly
when the change it reports does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from llmpulse.store.models import (
    AlertEventRow,
    AlertGroupRow,
    AlertLeaseRow,
    AlertOutboxRow,
    AlertRow,
    AlertRuleRow,
    AlertSeriesRow,
    AlertSilenceRow,
)

__all__ = [
    "AlertRecord",
    "AlertTx",
    "GroupRecord",
    "OutboxRecord",
    "SeriesRecord",
    "SilenceRecord",
    "alert_page",
    "statistics",
]

_RULES: Table = AlertRuleRow.__table__  # type: ignore[assignment]
_SERIES: Table = AlertSeriesRow.__table__  # type: ignore[assignment]
_ALERTS: Table = AlertRow.__table__  # type: ignore[assignment]
_EVENTS: Table = AlertEventRow.__table__  # type: ignore[assignment]
_SILENCES: Table = AlertSilenceRow.__table__  # type: ignore[assignment]
_OUTBOX: Table = AlertOutboxRow.__table__  # type: ignore[assignment]
_LEASES: Table = AlertLeaseRow.__table__  # type: ignore[assignment]
_GROUPS: Table = AlertGroupRow.__table__  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class SeriesRecord:
    """Evaluation state of one alert series."""

    fingerprint: str
    rule: str
    labels: dict[str, str]
    state: str  # pending | firing | held
    active_at: float
    last_true_at: float
    alert_id: int | None


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One incident, as stored."""

    id: int
    fingerprint: str
    rule: str
    severity: str
    labels: dict[str, str]
    model: str | None
    state: str  # firing | resolved
    summary: str
    value: float | None
    threshold: float | None
    baseline: float | None
    window_s: float | None
    evidence: dict[str, Any]
    started_at: float
    fired_at: float
    resolved_at: float | None
    resolved_by: str | None
    resolve_note: str | None
    acknowledged_at: float | None
    acknowledged_by: str | None
    ack_note: str | None
    notified_at: float | None
    escalation_level: int
    channels: list[str]


@dataclass(frozen=True, slots=True)
class SilenceRecord:
    """A silence: ``matchers`` are ``{"name", "op", "value"}`` with op one of = != =~ !~."""

    id: str
    matchers: list[dict[str, str]]
    starts_at: float
    ends_at: float
    created_by: str
    comment: str
    created_at: float


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """What ``channel`` was last told about a notification group: when, and which alerts
    (fingerprints) it was told are firing (Alertmanager's notification log entry)."""

    channel: str
    group_key: str
    sent_at: float
    firing: frozenset[str]


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """One notification row of the outbox."""

    id: int
    idempotency_key: str
    channel: str
    group_key: str
    status: str  # pending | delivered | failed
    payload: dict[str, Any]
    attempts: int
    next_attempt_at: float
    lease_owner: str | None
    lease_until: float | None
    created_at: float
    delivered_at: float | None
    last_error: str | None


def _alert(row: Any) -> AlertRecord:
    return AlertRecord(**{name: getattr(row, name) for name in AlertRecord.__slots__})


def _series(row: Any) -> SeriesRecord:
    return SeriesRecord(**{name: getattr(row, name) for name in SeriesRecord.__slots__})


def _silence(row: Any) -> SilenceRecord:
    return SilenceRecord(**{name: getattr(row, name) for name in SilenceRecord.__slots__})


def _outbox(row: Any) -> OutboxRecord:
    return OutboxRecord(**{name: getattr(row, name) for name in OutboxRecord.__slots__})


class AlertTx:
    """Reads and writes of the alerting tables inside one transaction (``conn``)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # -- series ----------------------------------------------------------------------------

    def series(self) -> dict[str, SeriesRecord]:
        """Every series with state, by fingerprint."""
        return {r.fingerprint: _series(r) for r in self.conn.execute(select(_SERIES))}

    def put_series(self, s: SeriesRecord) -> None:
        """Insert or replace the state of one series."""
        self.conn.execute(delete(_SERIES).where(_SERIES.c.fingerprint == s.fingerprint))
        values = {name: getattr(s, name) for name in SeriesRecord.__slots__}
        self.conn.execute(insert(_SERIES).values(**values))

    def touch_series(self, rows: Sequence[tuple[str, float]]) -> None:
        """Set ``last_true_at`` of many series at once: ``(fingerprint, at)``."""
        if rows:
            q = update(_SERIES).where(_SERIES.c.fingerprint == bindparam("fp"))
            self.conn.execute(q.values(last_true_at=bindparam("at")),
                              [{"fp": fp, "at": at} for fp, at in rows])  # fmt: skip

    def set_values(self, rows: Sequence[tuple[int, float | None]]) -> None:
        """Set the current ``value`` of many incidents at once: ``(alert_id, value)``."""
        if rows:
            q = update(_ALERTS).where(_ALERTS.c.id == bindparam("aid"))
            self.conn.execute(q.values(value=bindparam("v")),
                              [{"aid": a, "v": v} for a, v in rows])  # fmt: skip

    def delete_series(self, fingerprints: Sequence[str]) -> None:
        """Forget the state of these series."""
        if fingerprints:
            self.conn.execute(delete(_SERIES).where(_SERIES.c.fingerprint.in_(list(fingerprints))))

    # -- incidents -------------------------------------------------------------------------

    def open_alerts(self) -> dict[int, AlertRecord]:
        """Every firing incident, by id."""
        rows = self.conn.execute(select(_ALERTS).where(_ALERTS.c.state == "firing"))
        return {r.id: _alert(r) for r in rows}

    def get_alerts(self, ids: Sequence[int]) -> dict[int, AlertRecord]:
        """Incidents by id."""
        if not ids:
            return {}
        rows = self.conn.execute(select(_ALERTS).where(_ALERTS.c.id.in_(list(ids))))
        return {r.id: _alert(r) for r in rows}

    def get_alert(self, alert_id: int) -> AlertRecord | None:
        """One incident by id."""
        row = self.conn.execute(select(_ALERTS).where(_ALERTS.c.id == alert_id)).first()
        return None if row is None else _alert(row)

    def insert_alert(self, values: Mapping[str, Any]) -> int:
        """A new incident; returns its id."""
        result = self.conn.execute(insert(_ALERTS).values(**values).returning(_ALERTS.c.id))
        return int(result.scalar_one())

    def update_alert(self, alert_id: int, **values: Any) -> None:
        """Change fields of one incident."""
        self.conn.execute(update(_ALERTS).where(_ALERTS.c.id == alert_id).values(**values))

    def add_event(
        self, alert_id: int, at: float, kind: str, who: str | None = None, note: str | None = None
    ) -> None:
        """Append to an incident's history."""
        self.conn.execute(
            insert(_EVENTS).values(alert_id=alert_id, at=at, kind=kind, who=who, note=note)
        )

    # -- silences and outbox ---------------------------------------------------------------

    def silences(self, now: float) -> list[SilenceRecord]:
        """Silences active at ``now``."""
        query = select(_SILENCES).where(_SILENCES.c.starts_at <= now, _SILENCES.c.ends_at > now)
        return [_silence(r) for r in self.conn.execute(query)]

    # -- notification log ------------------------------------------------------------------

    def groups(self) -> dict[tuple[str, str], GroupRecord]:
        """Every group some channel was told has firing alerts, by (channel, group key)."""
        return {
            (r.channel, r.group_key): GroupRecord(
                r.channel, r.group_key, float(r.sent_at), frozenset(r.firing)
            )
            for r in self.conn.execute(select(_GROUPS))
        }

    def put_group(self, g: GroupRecord) -> None:
        """Record a notification of a group (or forget the group when nothing is firing)."""
        where = and_(_GROUPS.c.channel == g.channel, _GROUPS.c.group_key == g.group_key)
        self.conn.execute(delete(_GROUPS).where(where))
        if g.firing:
            self.conn.execute(insert(_GROUPS).values(
                channel=g.channel, group_key=g.group_key, sent_at=g.sent_at,
                firing=sorted(g.firing),
            ))  # fmt: skip

    def latest_alerts(self, fingerprints: Sequence[str]) -> dict[str, AlertRecord]:
        """The newest incident of each fingerprint."""
        if not fingerprints:
            return {}
        newest = (
            select(func.max(_ALERTS.c.id))
            .where(_ALERTS.c.fingerprint.in_(list(fingerprints)))
            .group_by(_ALERTS.c.fingerprint)
        )
        rows = self.conn.execute(select(_ALERTS).where(_ALERTS.c.id.in_(newest)))
        return {r.fingerprint: _alert(r) for r in rows}

    def last_enqueued(self, channel: str, group_key: str) -> float | None:
        """When the newest notification of ``group_key`` to ``channel`` was queued."""
        q = select(func.max(_OUTBOX.c.created_at)).where(
            _OUTBOX.c.channel == channel, _OUTBOX.c.group_key == group_key
        )
        value = self.conn.execute(q).scalar()
        return None if value is None else float(value)

    def enqueue(
        self, key: str, channel: str, group_key: str, payload: Mapping[str, Any], at: float
    ) -> None:
        """A notification to deliver: committed with the change it reports, or not at all."""
        self.conn.execute(
            insert(_OUTBOX).values(
                idempotency_key=key, channel=channel, group_key=group_key, status="pending",
                payload=dict(payload), attempts=0, next_attempt_at=at, created_at=at,
            )
        )  # fmt: skip


def alert_page(
    conn: Connection, filters: Mapping[str, Any], after: Sequence[Any] | None, limit: int
) -> list[AlertRecord]:
    """Incidents newest first (by fired_at, id), filtered; keyset paging with ``after``."""
    q = select(_ALERTS)
    for key in ("model", "severity", "rule", "fingerprint"):
        if filters.get(key) is not None:
            q = q.where(_ALERTS.c[key] == filters[key])
    state = filters.get("state")
    if state == "acknowledged":
        q = q.where(_ALERTS.c.state == "firing", _ALERTS.c.acknowledged_at.is_not(None))
    elif state is not None:
        q = q.where(_ALERTS.c.state == state)
    if filters.get("active_only"):
        q = q.where(_ALERTS.c.state == "firing")
    if filters.get("start") is not None:
        q = q.where(_ALERTS.c.fired_at >= filters["start"])
    if filters.get("end") is not None:
        q = q.where(_ALERTS.c.fired_at < filters["end"])
    if after is not None:
        at, last_id = after
        q = q.where(
            or_(_ALERTS.c.fired_at < at, and_(_ALERTS.c.fired_at == at, _ALERTS.c.id < last_id))
        )
    q = q.order_by(_ALERTS.c.fired_at.desc(), _ALERTS.c.id.desc()).limit(limit)
    return [_alert(r) for r in conn.execute(q)]


def alert_events(
    conn: Connection, alert_id: int
) -> list[tuple[float, str, str | None, str | None]]:
    """``(at, kind, who, note)`` of one incident, oldest first."""
    q = select(_EVENTS.c.at, _EVENTS.c.kind, _EVENTS.c.who, _EVENTS.c.note)
    q = q.where(_EVENTS.c.alert_id == alert_id).order_by(_EVENTS.c.id)
    return [(r[0], r[1], r[2], r[3]) for r in conn.execute(q)]


def statistics(conn: Connection, since: float) -> dict[str, Any]:
    """Counts by severity, rule and state, and mean times to acknowledge and resolve."""
    base = select(_ALERTS).where(_ALERTS.c.fired_at >= since).subquery()
    out: dict[str, Any] = {}
    for key in ("severity", "rule", "state"):
        q = select(base.c[key], func.count()).group_by(base.c[key])
        out[f"by_{key}"] = {str(k): int(n) for k, n in conn.execute(q)}
    out["total"] = sum(out["by_state"].values())
    ack = base.c.acknowledged_at - base.c.fired_at
    res = base.c.resolved_at - base.c.fired_at
    q = select(
        func.avg(ack),
        func.count(base.c.acknowledged_at),
        func.avg(res),
        func.count(base.c.resolved_at),
    )
    row = conn.execute(q).one()
    out["mtta_seconds"] = None if row[0] is None else float(row[0])
    out["acknowledged"] = int(row[1])
    out["mttr_seconds"] = None if row[2] is None else float(row[2])
    out["resolved"] = int(row[3])
    return out


# -- rules, silences, outbox, leases (short transactions of their own) ----------------------


def list_rules(conn: Connection) -> list[tuple[str, dict[str, Any], str, float, float]]:
    """``(name, spec, source, created_at, updated_at)`` of every stored rule, by name."""
    q = select(_RULES).order_by(_RULES.c.name)
    return [(r.name, r.spec, r.source, r.created_at, r.updated_at) for r in conn.execute(q)]


def put_rule(conn: Connection, name: str, spec: Mapping[str, Any], source: str, at: float) -> bool:
    """Insert or replace a rule; ``True`` when it is new."""
    row = conn.execute(select(_RULES.c.created_at).where(_RULES.c.name == name)).first()
    conn.execute(delete(_RULES).where(_RULES.c.name == name))
    created = at if row is None else row[0]
    conn.execute(
        insert(_RULES).values(
            name=name, spec=dict(spec), source=source, created_at=created, updated_at=at
        )
    )
    return row is None


def delete_rule(conn: Connection, name: str) -> bool:
    """Delete a rule; ``False`` when there was none."""
    return bool(conn.execute(delete(_RULES).where(_RULES.c.name == name)).rowcount)


def insert_silence(conn: Connection, s: SilenceRecord) -> None:
    """Store a new silence."""
    conn.execute(insert(_SILENCES).values(**{n: getattr(s, n) for n in SilenceRecord.__slots__}))


def list_silences(conn: Connection, now: float, include_expired: bool) -> list[SilenceRecord]:
    """Silences not yet ended (or all), newest first."""
    q = select(_SILENCES)
    if not include_expired:
        q = q.where(_SILENCES.c.ends_at > now)
    return [_silence(r) for r in conn.execute(q.order_by(_SILENCES.c.created_at.desc()))]


def expire_silence(conn: Connection, silence_id: str, now: float) -> SilenceRecord | None:
    """End a silence now (deleting is expiring, as in Alertmanager); ``None`` if unknown."""
    row = conn.execute(select(_SILENCES).where(_SILENCES.c.id == silence_id)).first()
    if row is None:
        return None
    if row.ends_at > now:
        values = {"ends_at": now, "starts_at": min(row.starts_at, now)}
        conn.execute(update(_SILENCES).where(_SILENCES.c.id == silence_id).values(**values))
    found = conn.execute(select(_SILENCES).where(_SILENCES.c.id == silence_id)).first()
    return _silence(found)


def claim_outbox(
    conn: Connection, owner: str, now: float, lease_s: float, limit: int
) -> list[OutboxRecord]:
    """Lease up to ``limit`` due rows, the oldest pending row of each (channel, group) only.

    Per (channel, group) rows go out in order, so a resolved notice never overtakes the firing
    one. A row is leased by a conditional update: of two workers only one gets it.
    """
    pending = _OUTBOX.c.status == "pending"
    # The oldest pending row of each group (index status, channel, group_key, id), then only
    # those due and not leased: groups waiting out a backoff never hide the due ones behind them.
    heads = (
        select(func.min(_OUTBOX.c.id))
        .where(pending)
        .group_by(_OUTBOX.c.channel, _OUTBOX.c.group_key)
    )
    q = (
        select(_OUTBOX)
        .where(
            _OUTBOX.c.id.in_(heads),
            _OUTBOX.c.next_attempt_at <= now,
            or_(_OUTBOX.c.lease_until.is_(None), _OUTBOX.c.lease_until <= now),
        )
        .order_by(_OUTBOX.c.id)
        .limit(limit)
    )
    claimed: list[OutboxRecord] = []
    for row in conn.execute(q).all():
        taken = conn.execute(
            update(_OUTBOX)
            .where(
                _OUTBOX.c.id == row.id,
                _OUTBOX.c.status == "pending",
                or_(_OUTBOX.c.lease_until.is_(None), _OUTBOX.c.lease_until <= now),
            )
            .values(lease_owner=owner, lease_until=now + lease_s, attempts=row.attempts + 1)
        ).rowcount
        if taken:
            claimed.append(
                dataclasses.replace(
                    _outbox(row),
                    lease_owner=owner,
                    lease_until=now + lease_s,
                    attempts=row.attempts + 1,
                )
            )
            if len(claimed) >= limit:
                break
    return claimed


def finish_outbox(
    conn: Connection,
    row_id: int,
    owner: str,
    *,
    status: str,
    at: float,
    error: str | None = None,
    next_attempt_at: float | None = None,
) -> bool:
    """Record a delivery attempt of a row this worker leased; ``False`` if the lease was lost."""
    values: dict[str, Any] = {"status": status, "lease_owner": None, "lease_until": None}
    if status == "delivered":
        values["delivered_at"] = at
    if error is not None:
        values["last_error"] = error[:2000]
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    q = update(_OUTBOX).where(_OUTBOX.c.id == row_id, _OUTBOX.c.lease_owner == owner)
    return bool(conn.execute(q.values(**values)).rowcount)


def release_outbox_leases(conn: Connection, owner: str) -> int:
    """Free the rows ``owner`` leased (its previous run died holding them); returns how many."""
    q = update(_OUTBOX).where(_OUTBOX.c.lease_owner == owner, _OUTBOX.c.status == "pending")
    return int(conn.execute(q.values(lease_owner=None, lease_until=None)).rowcount)


def prune_outbox(conn: Connection, before: float) -> int:
    """Delete delivered and failed notifications queued before ``before``; returns how many."""
    q = delete(_OUTBOX).where(_OUTBOX.c.status != "pending", _OUTBOX.c.created_at < before)
    return int(conn.execute(q).rowcount)


def outbox_rows(conn: Connection, status: str | None, limit: int) -> list[OutboxRecord]:
    """Outbox rows (of one status), oldest first."""
    q = select(_OUTBOX).order_by(_OUTBOX.c.id).limit(limit)
    if status is not None:
        q = q.where(_OUTBOX.c.status == status)
    return [_outbox(r) for r in conn.execute(q)]


def take_lease(conn: Connection, name: str, owner: str, now: float, ttl: float) -> bool:
    """Take or renew lease ``name`` for ``owner`` until ``now + ttl``; ``False`` if another holds it."""
    row = conn.execute(select(_LEASES).where(_LEASES.c.name == name)).first()
    if row is None:
        conn.execute(
            insert(_LEASES).values(name=name, owner=owner, expires_at=now + ttl, renewed_at=now)
        )
        return True
    q = update(_LEASES).where(
        _LEASES.c.name == name, or_(_LEASES.c.owner == owner, _LEASES.c.expires_at <= now)
    )
    return bool(conn.execute(q.values(owner=owner, expires_at=now + ttl, renewed_at=now)).rowcount)


def lease_renewed_at(conn: Connection, name: str) -> float | None:
    """When lease ``name`` was last taken or renewed (by anyone), or ``None``."""
    value = conn.execute(select(_LEASES.c.renewed_at).where(_LEASES.c.name == name)).scalar()
    return None if value is None else float(value)


def release_lease(conn: Connection, name: str, owner: str) -> None:
    """Give up lease ``name`` if ``owner`` holds it: it expires now, and the row keeps when it
    was last renewed (the next holder's measure of the time nobody held it)."""
    q = update(_LEASES).where(_LEASES.c.name == name, _LEASES.c.owner == owner)
    conn.execute(q.values(expires_at=0.0))
