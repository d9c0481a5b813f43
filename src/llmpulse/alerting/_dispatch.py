"""Which notifications a tick sends, to which channels, grouped how; written to the outbox.

Alertmanager's rules, per channel and group (the values of the rule's ``group_by`` labels):

* a group is notified when one of its alerts fires for the first time (or first becomes
  unmuted), when one resolves (``send_resolved``), and again every ``repeat_interval`` while
  an alert stays firing and unacknowledged; a notification carries every unmuted,
  unacknowledged firing alert of the group plus the ones that just resolved;
* a muted alert (silenced, inside one of its rule's ``mute_times``, or inhibited by a firing
  alert matching an inhibit rule's source) sends nothing; once that ends it is notified like a
  new alert;
* an alert that never sent a firing notice sends no resolved notice;
* an acknowledged alert sends no repeats and does not escalate (PagerDuty semantics); its
  resolved notice still goes out;
* escalation: after each step's ``after`` without acknowledgement, the step's channels get
  the alert (``escalation_level`` = the step number); they also get its resolved notice;
* a channel declaring a resend interval (``describe()["resend_interval_s"]``: Alertmanager,
  which resolves an alert once its ``endsAt`` passes) gets the group's firing alerts, the
  acknowledged ones included, at least that often.

Every notification becomes one outbox row per channel, in the tick's transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from llmpulse.alerting._mute_times import muted_now
from llmpulse.alerting._notify import alert_item, group_key, to_payload
from llmpulse.alerting._rules import InhibitRule, Rule
from llmpulse.alerting._silences import Inhibitor, silenced
from llmpulse.alerting.channels import Notification
from llmpulse.store.queries.alerts import AlertRecord, AlertTx

__all__ = ["Dispatched", "dispatch"]


@dataclass
class Dispatched:
    """Counts of what a tick queued."""

    notifications: int = 0
    muted: int = 0
    escalations: int = 0
    open: int = 0  # firing alerts after the tick's changes
    by_channel: dict[str, int] = field(default_factory=dict)


@dataclass
class _Group:
    channel: str
    key: str
    firing: list[AlertRecord] = field(default_factory=list)
    resolved: list[AlertRecord] = field(default_factory=list)
    triggered: bool = False
    level: int = 0
    refresh_only: bool = False  # sent only to refresh a channel that forgets (Alertmanager)


def _group_by(rule: Rule | None) -> Sequence[str]:
    return rule.group_by if rule is not None else ("alertname",)


class _Plan:
    def __init__(
        self, rules: Mapping[str, Rule], now: float, refresh: Mapping[str, float] | None = None
    ) -> None:
        self.rules = rules
        self.now = now
        self.refresh = dict(refresh or {})
        self.groups: dict[tuple[str, str, int], _Group] = {}

    def group(self, channel: str, alert: AlertRecord, level: int = 0) -> _Group:
        key = group_key(channel, alert.labels, _group_by(self.rules.get(alert.rule)))
        found = self.groups.get((channel, key, level))
        if found is None:
            found = self.groups[(channel, key, level)] = _Group(channel, key, level=level)
        return found


def _escalate(plan: _Plan, tx: AlertTx, alert: AlertRecord, rule: Rule, out: Dispatched) -> None:
    """Send ``alert`` to the escalation steps it has reached and not yet been sent to."""
    age = plan.now - alert.fired_at
    reached = sum(1 for step in rule.escalation if age >= step.after_s)
    if alert.acknowledged_at is not None or reached <= alert.escalation_level:
        return
    channels = list(alert.channels)
    for level in range(alert.escalation_level + 1, reached + 1):
        for channel in rule.escalation[level - 1].channels:
            g = plan.group(channel, alert, level)
            g.firing.append(alert)
            g.triggered = True
            if channel not in channels:
                channels.append(channel)
    tx.update_alert(alert.id, escalation_level=reached, channels=channels)
    tx.add_event(alert.id, plan.now, "escalated", note=f"level {reached}")
    out.escalations += 1


def _due(alert: AlertRecord, rule: Rule, now: float) -> bool:
    if alert.notified_at is None:
        return True
    return alert.acknowledged_at is None and now - alert.notified_at >= rule.repeat_interval_s


def _plan_firing(
    plan: _Plan,
    tx: AlertTx,
    inhibit_rules: Sequence[InhibitRule],
    out: Dispatched,
    known: Mapping[int, AlertRecord] | None,
) -> None:
    """Put every unmuted, unacknowledged firing alert in its groups; escalate where due."""
    open_alerts = list((tx.open_alerts() if known is None else known).values())
    out.open = len(open_alerts)
    silences = tx.silences(plan.now)
    muted_by = Inhibitor([a.labels for a in open_alerts], inhibit_rules)
    for alert in open_alerts:
        rule = plan.rules.get(alert.rule)
        acked = alert.acknowledged_at is not None
        if rule is None or (acked and not plan.refresh):
            continue
        if (
            silenced(alert.labels, silences)
            or muted_by(alert.labels)
            or muted_now(rule.mute_times, plan.now)
        ):
            out.muted += 1
            continue
        due = _due(alert, rule, plan.now)
        for channel in rule.channels:
            if acked and channel not in plan.refresh:
                continue  # acknowledged: only channels that would forget it still get it
            g = plan.group(channel, alert)
            g.firing.append(alert)
            g.triggered = g.triggered or due
        if not acked:
            _escalate(plan, tx, alert, rule, out)
    _plan_refresh(plan, tx)


def _plan_refresh(plan: _Plan, tx: AlertTx) -> None:
    """Re-send to channels with a resend interval (Alertmanager resolves an alert whose endsAt
    passes) every such interval, whatever the rule's repeat_interval or an acknowledgement."""
    for g in plan.groups.values():
        every = plan.refresh.get(g.channel)
        if every is None or g.triggered or not g.firing or g.level:
            continue
        last = tx.last_enqueued(g.channel, g.key)
        if last is None or plan.now - last >= every:
            g.triggered = g.refresh_only = True


def _plan_resolved(plan: _Plan, resolved_now: Sequence[AlertRecord]) -> None:
    """Resolved notices of alerts that had sent a firing one, to every channel they reached."""
    for alert in resolved_now:
        rule = plan.rules.get(alert.rule)
        if alert.notified_at is None or (rule is not None and not rule.send_resolved):
            continue
        for channel in alert.channels:
            g = plan.group(channel, alert)
            g.resolved.append(alert)
            g.triggered = True


def dispatch(
    tx: AlertTx,
    rules: Mapping[str, Rule],
    resolved_now: Sequence[AlertRecord],
    inhibit_rules: Sequence[InhibitRule],
    now: float,
    *,
    link_base: str | None = None,
    new_key: Callable[[], str] = lambda: uuid.uuid4().hex,
    resolved_only: bool = False,
    open_alerts: Mapping[int, AlertRecord] | None = None,
    refresh: Mapping[str, float] | None = None,
) -> Dispatched:
    """Queue this tick's notifications in the outbox (same transaction as the changes).

    ``resolved_only``: only the resolved notices of ``resolved_now`` (a resolve by hand).
    ``open_alerts``: the firing incidents, when the caller has them (else they are read).
    ``refresh``: channels that must hear of a firing alert every so many seconds (by name).
    """
    out = Dispatched()
    plan = _Plan(rules, now, refresh)
    if not resolved_only:
        _plan_firing(plan, tx, inhibit_rules, out, open_alerts)
    _plan_resolved(plan, resolved_now)
    notified: set[int] = set()
    for g in plan.groups.values():
        if not g.triggered:
            continue
        items = [alert_item(a, "firing", now=now, link_base=link_base) for a in g.firing]
        items += [alert_item(a, "resolved", now=now, link_base=link_base) for a in g.resolved]
        key = new_key()
        note = Notification(key, g.key, "firing" if g.firing else "resolved", tuple(items), g.level)
        tx.enqueue(key, g.channel, g.key, to_payload(note), now)
        out.notifications += 1
        out.by_channel[g.channel] = out.by_channel.get(g.channel, 0) + 1
        if not g.refresh_only:  # a refresh must not reset the repeat clock of other channels
            notified.update(a.id for a in g.firing)
    for alert_id in notified:
        tx.update_alert(alert_id, notified_at=now)
        tx.add_event(alert_id, now, "notified")
    return out
