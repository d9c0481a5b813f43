"""Notifications: alerts to grouped :class:`Notification` s, and to and from outbox payloads.

A notification is stored in the outbox as JSON (``to_payload``) and rebuilt by the delivery
worker (``from_payload``), so what the channel sends is exactly what was committed with the
alert change, whenever and however many times it is attempted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from llmpulse.alerting.channels import AlertItem, Notification

if TYPE_CHECKING:
    from llmpulse.store.queries.alerts import AlertRecord

__all__ = ["alert_item", "from_payload", "group_key", "to_payload"]


def group_key(channel: str, labels: Mapping[str, str], group_by: Sequence[str]) -> str:
    """The notification group of an alert on ``channel``: the values of ``group_by`` labels;
    ``["..."]`` groups by every label (Alertmanager: grouping off, one alert per group)."""
    names = sorted(labels) if "..." in group_by else sorted(group_by)
    doc = json.dumps([channel, [(k, labels.get(k, "")) for k in names]])
    return hashlib.sha256(doc.encode()).hexdigest()[:32]


def alert_item(
    alert: AlertRecord, status: str, *, now: float, link_base: str | None = None
) -> AlertItem:
    """The channel-facing view of one incident."""
    evidence = dict(alert.evidence)
    evidence["alert_id"] = alert.id
    if alert.acknowledged_at is not None:
        evidence["acknowledged_by"] = alert.acknowledged_by
    return AlertItem(
        fingerprint=alert.fingerprint,
        rule=alert.rule,
        severity=alert.severity,
        status=status,
        labels=dict(alert.labels),
        summary=alert.summary,
        value=alert.value,
        threshold=alert.threshold,
        baseline=alert.baseline,
        window_s=alert.window_s,
        starts_at=alert.fired_at,
        ends_at=(alert.resolved_at or now) if status == "resolved" else None,
        link=f"{link_base.rstrip('/')}/api/v1/alerts/{alert.id}" if link_base else None,
        evidence=evidence,
    )


def to_payload(notification: Notification) -> dict[str, Any]:
    """A JSON-able dict of ``notification``."""
    doc = asdict(notification)
    doc["items"] = [dict(asdict(i), labels=dict(i.labels)) for i in notification.items]
    return doc


def from_payload(doc: Mapping[str, Any]) -> Notification:
    """The notification ``to_payload`` stored."""
    items = tuple(AlertItem(**item) for item in doc["items"])
    return Notification(
        idempotency_key=doc["idempotency_key"],
        group_key=doc["group_key"],
        status=doc["status"],
        items=items,
        escalation_level=int(doc.get("escalation_level", 0)),
    )
