"""The evidence of an alert as text: one source for every channel's message.

Each channel lays the same facts out in its own format (Slack blocks, Discord embeds, an email,
Alertmanager annotations, a JSON body), so the facts are chosen and worded here once: what was
measured (value), against what (threshold), what is normal (baseline), over which window, since
when, and where to look (link).
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timezone
from typing import Any

from llmpulse._duration import format_duration
from llmpulse.alerting.channels._base import AlertItem, Notification

__all__ = ["facts", "iso", "notification_json", "number", "plain_text", "title", "truncate"]


def iso(ts: float) -> str:
    """RFC 3339 UTC with a ``Z`` (``2026-12-02T22:45:00Z``), milliseconds when not whole."""
    dt = datetime.fromtimestamp(ts, tz=timezone.utc)
    text = dt.isoformat(timespec="milliseconds" if dt.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def number(value: float) -> str:
    """A measured value for people: 4 significant digits below 1000, thousands separated above."""
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 1000:
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return f"{value:.4g}"


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, ending with ``…`` when cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def facts(item: AlertItem) -> list[tuple[str, str]]:
    """The alert's evidence as (name, value) pairs, most telling first; absent facts left out."""
    out: list[tuple[str, str]] = []
    if item.value is not None:
        out.append(("Value", number(item.value)))
    if item.threshold is not None:
        out.append(("Threshold", number(item.threshold)))
    if item.baseline is not None:
        out.append(("Baseline", number(item.baseline)))
    if item.window_s is not None and item.window_s > 0:
        out.append(("Window", format_duration(item.window_s)))
    out.append(("Started", iso(item.starts_at)))
    if item.ends_at is not None:
        out.append(("Ended", iso(item.ends_at)))
    if item.labels:
        out.append(("Labels", ", ".join(f"{k}={v}" for k, v in sorted(item.labels.items()))))
    for key, value in sorted(item.evidence.items()):
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        out.append((str(key), text))
    return out


def title(notification: Notification) -> str:
    """``[FIRING:2] high_latency (critical)`` — Alertmanager's subject, which operators know."""
    items = notification.firing if notification.status == "firing" else notification.items
    rules = sorted({i.rule for i in items})
    severity = max(items, key=lambda i: ("info", "warning", "critical").index(i.severity)).severity
    escalated = (
        f" escalation {notification.escalation_level}" if notification.escalation_level else ""
    )
    head = f"[{notification.status.upper()}:{len(items)}]"
    return f"{head} {', '.join(rules)} ({severity}){escalated}"


def plain_text(notification: Notification) -> str:
    """The whole notification as plain text (the email body and the fallback text)."""
    lines = [title(notification), ""]
    for item in notification.items:
        lines.append(f"{item.status.upper()} [{item.severity}] {item.rule}: {item.summary}")
        lines.extend(f"  {name}: {value}" for name, value in facts(item))
        if item.link:
            lines.append(f"  Link: {item.link}")
        lines.append("")
    lines.append(f"Group: {notification.group_key}")
    lines.append(f"Notification id: {notification.idempotency_key}")
    return "\n".join(lines)


def item_json(item: AlertItem) -> dict[str, Any]:
    """One alert as JSON, times as RFC 3339 and as Unix seconds."""
    return {
        "fingerprint": item.fingerprint,
        "rule": item.rule,
        "severity": item.severity,
        "status": item.status,
        "labels": dict(item.labels),
        "summary": item.summary,
        "value": item.value,
        "threshold": item.threshold,
        "baseline": item.baseline,
        "window_s": item.window_s,
        "starts_at": iso(item.starts_at),
        "ends_at": iso(item.ends_at) if item.ends_at is not None else None,
        "link": item.link,
        "evidence": dict(item.evidence),
    }


def notification_json(notification: Notification) -> dict[str, Any]:
    """The notification as the generic webhook's JSON body (``version`` 1)."""
    return {
        "version": 1,
        "idempotency_key": notification.idempotency_key,
        "group_key": notification.group_key,
        "status": notification.status,
        "escalation_level": notification.escalation_level,
        "title": title(notification),
        "alerts": [item_json(i) for i in notification.items],
    }
