"""The alert lifecycle of one tick: inactive → pending → firing → resolved, per fingerprint.

Prometheus semantics: a series that crosses its rule is *pending* until it has crossed at every
evaluation for ``for``; it then *fires* (a new incident, a new alert id). A pending series missing
from one evaluation is forgotten, so its timer restarts. A firing series resolves at the first
evaluation where it does not cross, unless ``keep_firing_for`` holds it; a rule that failed to
evaluate changes nothing (a broken query must not resolve, nor fire, anything). A series resolved
by hand is *held*: it sends nothing until its condition clears, and a later crossing is a new
incident. State lives in the store, so a restart keeps pending timers and keep-firing windows.

When an evaluator takes over after nobody evaluated for a while (a restart, a failover), the
time nobody looked does not count as pending (Prometheus' ``for`` state restore): each pending
series keeps the time it had been seen crossing and needs the rest of ``for`` observed by the
new evaluator, so a restart neither restarts the timers nor fires alerts early. After more
than ``FOR_OUTAGE_TOLERANCE_SECONDS`` without evaluation the old state is too stale to trust,
and pending series start over.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmpulse._duration import format_duration
from llmpulse.alerting._rules import Rule, Sample, fingerprint, render_summary
from llmpulse.store.queries.alerts import AlertRecord, AlertTx, SeriesRecord

__all__ = ["FOR_OUTAGE_TOLERANCE_SECONDS", "Active", "Changes", "apply_tick", "resolve"]

#: Prometheus' ``--rules.alert.for-outage-tolerance``: longer without evaluation, pending
#: timers start over instead of resuming.
FOR_OUTAGE_TOLERANCE_SECONDS = 3600.0


@dataclass(frozen=True)
class Active:
    """A series crossing its rule at this evaluation."""

    rule: Rule
    labels: dict[str, str]
    sample: Sample


@dataclass
class Changes:
    """What a tick changed: incidents fired and resolved, counts for the report."""

    fired: list[int] = field(default_factory=list)
    resolved: list[AlertRecord] = field(default_factory=list)
    pending: int = 0
    template_failures: int = 0
    # written in two batched statements at the end of the tick
    touched: list[tuple[str, float]] = field(default_factory=list)
    values: list[tuple[int, float | None]] = field(default_factory=list)
    # the firing incidents after the tick (read once at its start, then kept up to date)
    open_alerts: dict[int, AlertRecord] = field(default_factory=dict)


def active_series(rule: Rule, samples: list[Sample]) -> dict[str, Active]:
    """The crossing series of ``rule`` by fingerprint (label sets are the identity).

    Two samples with the same labels (once the rule's own are added) would be one alert with
    two values: as in Prometheus, the evaluation fails (and so changes nothing) instead of
    keeping one of them silently.
    """
    out: dict[str, Active] = {}
    for s in samples:
        labels = {
            **{k: str(v) for k, v in s.labels.items()},
            **rule.labels,
            "alertname": rule.name,
            "severity": s.severity or rule.severity,
        }
        fp = fingerprint(rule.name, labels)
        if fp in out:
            raise ValueError(
                f"two samples have the same labels {sorted(labels.items())} after the rule's "
                "labels are applied; split them with `by` or distinct labels"
            )
        out[fp] = Active(rule, labels, s)
    return out


def _summary(a: Active, changes: Changes) -> str:
    rule, s = a.rule, a.sample
    threshold = s.evidence.get("threshold")
    if not rule.summary:
        if s.summary:
            return s.summary
        what = rule.metric or rule.type
        value = (
            "absent" if rule.type == "absence" else f"{s.value:.4g}" if s.value is not None else ""
        )
        limit = f" {rule.op} {threshold:g}" if threshold is not None else ""
        return f"{rule.name}: {what} {value}{limit} over {format_duration(rule.window_s)}".strip()
    values: dict[str, Any] = {
        **a.labels,
        "rule": rule.name,
        "value": math.nan if s.value is None else s.value,
        "threshold": math.nan if threshold is None else threshold,
        "baseline": math.nan if s.baseline is None else s.baseline,
        "window": format_duration(rule.window_s),
    }
    text, ok = render_summary(rule.summary, values)
    if not ok:
        changes.template_failures += 1
    return text


def _fire(tx: AlertTx, fp: str, a: Active, started: float, now: float, changes: Changes) -> None:
    rule, s = a.rule, a.sample
    threshold = s.evidence.get("threshold")
    alert_id = tx.insert_alert(
        {
            "fingerprint": fp, "rule": rule.name, "severity": a.labels["severity"],
            "labels": a.labels, "model": a.labels.get("model"), "state": "firing",
            "summary": _summary(a, changes), "value": s.value,
            "threshold": threshold, "baseline": s.baseline, "window_s": rule.window_s,
            "evidence": {k: v for k, v in s.evidence.items() if k != "threshold"},
            "started_at": started, "fired_at": now, "escalation_level": 0,
            "channels": list(rule.channels), "notified_at": None,
        }
    )  # fmt: skip
    tx.add_event(alert_id, now, "fired", note=f"value {s.value}")
    tx.put_series(SeriesRecord(fp, rule.name, a.labels, "firing", started, now, alert_id))
    changes.fired.append(alert_id)


def resolve(
    tx: AlertTx, alert: AlertRecord, now: float, who: str | None, note: str | None
) -> AlertRecord:
    """Close an incident; returns it as resolved."""
    values = {"state": "resolved", "resolved_at": now, "resolved_by": who, "resolve_note": note}
    tx.update_alert(alert.id, **values)
    tx.add_event(alert.id, now, "resolved", who, note)
    found = tx.get_alert(alert.id)
    assert found is not None
    return found


def _still(
    s: SeriesRecord, a: Active, now: float, alerts: Mapping[int, AlertRecord], changes: Changes
) -> bool:
    """The series crosses again: ``True`` when it is due to fire now (pending long enough)."""
    if s.state == "pending":
        if now - s.active_at >= a.rule.for_s:
            return True
        changes.pending += 1
        return False
    # last_true_at matters only to keep_firing_for; the current value to readers of the alert.
    if a.rule.keep_firing_for_s > 0:
        changes.touched.append((s.fingerprint, now))
    alert = alerts.get(s.alert_id) if s.alert_id is not None else None
    if s.state == "firing" and alert is not None and alert.value != a.sample.value:
        changes.values.append((alert.id, a.sample.value))
    return False


def _gone(
    tx: AlertTx,
    s: SeriesRecord,
    rule: Rule | None,
    open_alerts: Mapping[int, AlertRecord],
    now: float,
    changes: Changes,
) -> None:
    """The series does not cross (or its rule is gone): forget, keep firing, or resolve."""
    if s.state == "firing" and rule is not None and now - s.last_true_at < rule.keep_firing_for_s:
        return
    alert = open_alerts.get(s.alert_id) if s.alert_id is not None else None
    if s.state == "firing" and alert is not None:
        note = "condition cleared" if rule is not None else "rule removed or disabled"
        changes.resolved.append(resolve(tx, alert, now, None, note))
    tx.delete_series([s.fingerprint])


def _restore_pending(
    tx: AlertTx, states: dict[str, SeriesRecord], downtime: float, now: float
) -> None:
    """Move pending timers past ``downtime`` (nobody evaluated), or restart them after an
    outage longer than the tolerance."""
    for fp, s in list(states.items()):
        if s.state != "pending":
            continue
        if downtime > FOR_OUTAGE_TOLERANCE_SECONDS:
            active_at = now
        else:
            active_at = min(now, s.active_at + downtime)
        states[fp] = dataclasses.replace(s, active_at=active_at)
        tx.put_series(states[fp])


def apply_tick(
    tx: AlertTx,
    rules: Mapping[str, Rule],
    active: Mapping[str, Active],
    failed: set[str],
    now: float,
    *,
    downtime: float = 0.0,
) -> Changes:
    """Apply one evaluation to the stored series state; returns what changed.

    ``downtime``: how long nobody evaluated before this tick, when this evaluator just took
    over (0 otherwise); pending series do not count it.
    """
    changes = Changes()
    states = tx.series()
    if downtime > 0:
        _restore_pending(tx, states, downtime, now)
    open_alerts = tx.open_alerts()
    for fp, a in active.items():
        s = states.get(fp)
        if s is None:
            if a.rule.for_s <= 0:
                _fire(tx, fp, a, now, now, changes)
            else:
                tx.put_series(SeriesRecord(fp, a.rule.name, a.labels, "pending", now, now, None))
                changes.pending += 1
        elif _still(s, a, now, open_alerts, changes):
            _fire(tx, fp, a, s.active_at, now, changes)
    for fp, s in states.items():
        if fp in active or s.rule in failed:
            continue
        rule = rules.get(s.rule)
        _gone(tx, s, rule if rule is not None and rule.enabled else None, open_alerts, now, changes)
    tx.touch_series(changes.touched)
    tx.set_values(changes.values)
    resolved = {a.id for a in changes.resolved}
    now_open = {i: a for i, a in open_alerts.items() if i not in resolved}
    for alert_id, value in changes.values:
        if alert_id in now_open:
            now_open[alert_id] = dataclasses.replace(now_open[alert_id], value=value)
    now_open.update(tx.get_alerts(changes.fired))
    changes.open_alerts = now_open
    return changes
