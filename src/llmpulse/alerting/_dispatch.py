"""Which notifications a tick sends, to which channels, grouped how; written to the outbox.

Alertmanager's rules, per channel and group (the values of the rule's ``group_by`` labels),
with its timers (``group_wait``, ``group_interval``, ``repeat_interval``; see ``_grouping``):

* a group is notified when an alert the channel was not told about fires (or first becomes
  unmuted), when one it was told about resolves (``send_resolved``), and again every
  ``repeat_interval`` while an alert stays firing and unacknowledged; a notification carries
  every unmuted, unacknowledged firing alert of the group plus the ones that resolved;
* a muted alert (silenced, inside one of its rule's ``mute_times``, or inhibited by a firing
  alert matching an inhibit rule's source) sends nothing; once that ends it is notified like a
  new alert unless the channel already knows it fires;
* an alert the channel never heard of sends no resolved notice, and a channel with
  ``send_resolved: false`` (email's default, as in Alertmanager) gets none at all;
* an acknowledged alert sends no repeats and does not escalate (PagerDuty semantics); its
  resolved notice still goes out;
* escalation: after each step's ``after`` without acknowledgement, the step's channels get
  the alert at once (``escalation_level`` = the step number); they also get its resolved notice;
* a channel declaring a resend interval (``describe()["resend_interval_s"]``: Alertmanager,
  which resolves an alert once its ``endsAt`` passes) gets the group's firing alerts, the
  acknowledged ones included, at least that often.

Every notification becomes one outbox row per channel, and the group's notification log entry
is updated, in the tick's transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from llmpulse.alerting._grouping import Timers, decide
from llmpulse.alerting._mute_times import muted_now
from llmpulse.alerting._notify import alert_item, group_key, to_payload
from llmpulse.alerting._rules import InhibitRule, Rule
from llmpulse.alerting._silences import Inhibitor, silenced
from llmpulse.alerting.channels import Notification
from llmpulse.store.queries.alerts import AlertRecord, AlertTx, GroupRecord

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
    level: int = 0
    firing: list[AlertRecord] = field(default_factory=list)  # unmuted, unacknowledged
    acked: list[AlertRecord] = field(default_factory=list)  # sent only to forgetful channels
    resolved: list[AlertRecord] = field(default_factory=list)
    still_open: set[str] = field(default_factory=set)  # every unresolved alert (fingerprints)
    timers: list[tuple[float, float, float]] = field(default_factory=list)
    triggered: bool = False
    refresh_only: bool = False  # sent only to refresh a channel that forgets (Alertmanager)
    forget: frozenset[str] = frozenset()  # resolved alerts dropped from the log unannounced


def _group_by(rule: Rule | None) -> Sequence[str]:
    return rule.group_by if rule is not None else ("alertname",)


def _timers(rule: Rule) -> tuple[float, float, float]:
    return (rule.group_wait_s, rule.group_interval_s, rule.repeat_interval_s)


class _Plan:
    def __init__(
        self,
        rules: Mapping[str, Rule],
        now: float,
        refresh: Mapping[str, float] | None = None,
        quiet: frozenset[str] = frozenset(),
    ) -> None:
        self.rules = rules
        self.now = now
        self.refresh = dict(refresh or {})
        self.quiet = quiet  # channels that get no resolved notices (send_resolved: false)
        self.groups: dict[tuple[str, str, int], _Group] = {}

    def group(self, channel: str, alert: AlertRecord, level: int = 0) -> _Group:
        key = group_key(channel, alert.labels, _group_by(self.rules.get(alert.rule)))
        return self.group_of(channel, key, level)

    def group_of(self, channel: str, key: str, level: int = 0) -> _Group:
        found = self.groups.get((channel, key, level))
        if found is None:
            found = self.groups[(channel, key, level)] = _Group(channel, key, level)
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


def _plan_firing(
    plan: _Plan,
    tx: AlertTx,
    inhibit_rules: Sequence[InhibitRule],
    out: Dispatched,
    known: Mapping[int, AlertRecord] | None,
) -> None:
    """Put every firing alert in its groups (unmuted, unacknowledged ones to be sent); escalate."""
    open_alerts = list((tx.open_alerts() if known is None else known).values())
    out.open = len(open_alerts)
    silences = tx.silences(plan.now)
    muted_by = Inhibitor([a.labels for a in open_alerts], inhibit_rules)
    for alert in open_alerts:
        rule = plan.rules.get(alert.rule)
        if rule is None:
            continue
        for channel in dict.fromkeys([*rule.channels, *alert.channels]):
            plan.group(channel, alert).still_open.add(alert.fingerprint)
        if (
            silenced(alert.labels, silences)
            or muted_by(alert.labels)
            or muted_now(rule.mute_times, plan.now)
        ):
            out.muted += 1
            continue
        acked = alert.acknowledged_at is not None
        for channel in rule.channels:
            g = plan.group(channel, alert)
            if not acked:
                g.firing.append(alert)
                g.timers.append(_timers(rule))
            elif channel in plan.refresh:
                g.acked.append(alert)  # acknowledged: only channels that would forget it
        if not acked:
            _escalate(plan, tx, alert, rule, out)


def _plan_turns(
    plan: _Plan,
    tx: AlertTx,
    log: Mapping[tuple[str, str], GroupRecord],
    resolved_now: Sequence[AlertRecord],
) -> None:
    """Each group's turn (``_grouping.decide``), and the resolved alerts it announces."""
    for channel, key in log:
        plan.group_of(channel, key)  # a group the channel knows of, even if all resolved
    gone = {
        fp
        for (channel, key, level), g in plan.groups.items()
        if not level and (channel, key) in log
        for fp in log[(channel, key)].firing - g.still_open
    }
    records = {a.fingerprint: a for a in resolved_now}
    records.update(tx.latest_alerts(sorted(gone - set(records))))
    records = {fp: a for fp, a in records.items() if a.state == "resolved"}
    for (channel, key, level), g in list(plan.groups.items()):
        if level:
            continue
        entry = log.get((channel, key))
        decision = decide(
            entry, {a.fingerprint for a in g.firing}, g.still_open,
            min((a.fired_at for a in g.firing), default=None),
            Timers.of(g.timers or _resolved_timers(plan, entry, records)), plan.now,
            announce=_announcer(plan, records, channel),
        )  # fmt: skip
        if decision.send:
            g.triggered = True
            g.resolved = [
                records[fp] for fp in sorted(decision.resolved)
                if fp in records and _announces(plan, records[fp], channel)
            ]  # fmt: skip
        else:
            g.forget = decision.resolved


def _resolved_timers(
    plan: _Plan, entry: GroupRecord | None, records: Mapping[str, AlertRecord]
) -> list[tuple[float, float, float]]:
    """Timers of a group whose alerts all resolved: from their rules, when still known."""
    if entry is None:
        return []
    rules = [plan.rules.get(records[fp].rule) for fp in entry.firing if fp in records]
    return [_timers(r) for r in rules if r is not None]


def _announcer(
    plan: _Plan, records: Mapping[str, AlertRecord], channel: str
) -> Callable[[str], bool]:
    """Whether ``channel`` is to hear that the alert with this fingerprint resolved."""

    def announce(fp: str) -> bool:
        return fp in records and _announces(plan, records[fp], channel)

    return announce


def _announces(plan: _Plan, alert: AlertRecord, channel: str) -> bool:
    if channel in plan.quiet:
        return False
    rule = plan.rules.get(alert.rule)
    return rule is None or rule.send_resolved


def _plan_refresh(plan: _Plan, tx: AlertTx) -> None:
    """Re-send to channels with a resend interval (Alertmanager resolves an alert whose endsAt
    passes) every such interval, whatever the rule's repeat_interval or an acknowledgement."""
    for g in plan.groups.values():
        every = plan.refresh.get(g.channel)
        if every is None or g.triggered or not (g.firing or g.acked) or g.level:
            continue
        last = tx.last_enqueued(g.channel, g.key)
        if last is None or plan.now - last >= every:
            g.triggered = g.refresh_only = True


def _plan_manual(
    plan: _Plan, log: Mapping[tuple[str, str], GroupRecord], resolved: Sequence[AlertRecord]
) -> None:
    """Resolved by hand: the notice goes at once to every channel that was told it fires."""
    for alert in resolved:
        for channel in alert.channels:
            if not _announces(plan, alert, channel):
                continue
            g = plan.group(channel, alert)
            entry = log.get((channel, g.key))
            if entry is not None and alert.fingerprint in entry.firing:
                g.resolved.append(alert)
                g.triggered = True
                g.still_open = set(entry.firing) - {alert.fingerprint}


def _record(tx: AlertTx, log: dict[tuple[str, str], GroupRecord], g: _Group, now: float) -> None:
    """The group's log entry after this tick: what the channel now believes is firing."""
    entry = log.get((g.channel, g.key))
    known = entry.firing if entry is not None else frozenset()
    if g.triggered and not g.refresh_only:
        told = {a.fingerprint for a in g.firing}
        told |= known if g.level else known & g.still_open  # an escalation only adds
        after = GroupRecord(g.channel, g.key, now, frozenset(told))
    elif g.forget and entry is not None:
        after = GroupRecord(g.channel, g.key, entry.sent_at, known - g.forget)
    else:
        return
    tx.put_group(after)
    log[(g.channel, g.key)] = after


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
    quiet: frozenset[str] = frozenset(),
) -> Dispatched:
    """Queue this tick's notifications in the outbox (same transaction as the changes).

    ``resolved_only``: only the resolved notices of ``resolved_now`` (a resolve by hand).
    ``open_alerts``: the firing incidents, when the caller has them (else they are read).
    ``refresh``: channels that must hear of a firing alert every so many seconds (by name).
    ``quiet``: channels that get no resolved notices (``send_resolved: false``).
    """
    out = Dispatched()
    plan = _Plan(rules, now, refresh, quiet)
    log = dict(tx.groups())
    if resolved_only:
        _plan_manual(plan, log, resolved_now)
    else:
        _plan_firing(plan, tx, inhibit_rules, out, open_alerts)
        _plan_turns(plan, tx, log, resolved_now)
        _plan_refresh(plan, tx)
    notified: set[int] = set()
    for g in plan.groups.values():
        _record(tx, log, g, now)
        if not g.triggered or not (g.firing or g.acked or g.resolved):
            continue
        items = [alert_item(a, "firing", now=now, link_base=link_base) for a in g.firing + g.acked]
        items += [alert_item(a, "resolved", now=now, link_base=link_base) for a in g.resolved]
        key = new_key()
        status = "firing" if g.firing or g.acked else "resolved"
        note = Notification(key, g.key, status, tuple(items), g.level)
        tx.enqueue(key, g.channel, g.key, to_payload(note), now)
        out.notifications += 1
        out.by_channel[g.channel] = out.by_channel.get(g.channel, 0) + 1
        if not g.refresh_only:  # a refresh must not reset the repeat clock of other channels
            notified.update(a.id for a in g.firing)
    for alert_id in notified:
        tx.update_alert(alert_id, notified_at=now)
        tx.add_event(alert_id, now, "notified")
    return out
