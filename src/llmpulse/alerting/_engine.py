"""The alert engine: evaluate every rule, apply the lifecycle, queue notifications, per tick.

A tick reads what the rules need (rollups once per window, never raw spans) outside any write
transaction, then applies every state change and writes every notification it causes in ONE
transaction (the durable outbox). Only the holder of the ``alert-evaluator`` lease evaluates,
so several servers sharing one PostgreSQL database run one evaluator between them; a lease not
renewed within ``lease_seconds`` (its holder died) passes to the next process that asks.

Time comes from ``clock`` (a callable returning Unix seconds) so tests drive the engine with
a controllable clock and no sleeps::

    engine = AlertEngine(store, load_rules("rules.yaml"), clock=time.time)
    report = engine.tick()
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmpulse._config_file import FieldError
from llmpulse.alerting._dispatch import Dispatched, dispatch
from llmpulse.alerting._load import RuleSet, check_channels, resolved_channels
from llmpulse.alerting._parse import parse_rule
from llmpulse.alerting._points import PointHistory
from llmpulse.alerting._query import ChecksRun, EvalContext, FindingsCache, measure, run_checks
from llmpulse.alerting._rules import Rule
from llmpulse.alerting._transitions import Active, active_series, apply_tick, resolve
from llmpulse.errors import ConfigError, LlmpulseError
from llmpulse.store.queries.alerts import SeriesRecord

if TYPE_CHECKING:
    from llmpulse.alerting.channels import Channel
    from llmpulse.store import Store
    from llmpulse.store.queries.alerts import AlertRecord

__all__ = ["EVALUATOR_LEASE", "AlertEngine", "TickReport"]

log = logging.getLogger("llmpulse.alerting")

EVALUATOR_LEASE = "alert-evaluator"
#: A lease outlives a few missed ticks, so a slow tick does not hand evaluation over.
DEFAULT_LEASE_SECONDS = 90.0
DEFAULT_INTERVAL_SECONDS = 30.0


def default_owner() -> str:
    """``host:pid:random``: tells evaluators and delivery workers apart."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class TickReport:
    """What one tick did."""

    at: float
    evaluated: bool
    rules: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    firing: int = 0
    pending: int = 0
    fired: int = 0
    resolved: int = 0
    template_failures: int = 0
    dispatched: Dispatched = field(default_factory=Dispatched)


class AlertEngine:
    """Evaluates rules against a store and keeps alert state and the outbox in it."""

    def __init__(
        self,
        store: Store,
        rule_set: RuleSet | None = None,
        *,
        rules: Iterable[Rule] = (),
        clock: Callable[[], float] = time.time,
        owner: str | None = None,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        link_base: str | None = None,
    ) -> None:
        self.store = store
        self.rule_set = rule_set or RuleSet()
        self._code_rules = {r.name: r for r in rules}
        self.clock = clock
        self.owner = owner or default_owner()
        self.lease_seconds = lease_seconds
        self.link_base = link_base
        self.template_failures = 0
        self._holding = False  # whether this engine evaluated last (holds the lease)
        # Metric points read so far, so each tick reads only new ones (see _points.py).
        self._points = PointHistory(lambda name, start, end: store.metric_series(name, start, end))
        # Check findings by (window, baseline), reused for a while (see _query.py).
        self._findings: FindingsCache = {}
        #: Set by a runner that calls ``refresh_checks`` in the background: ticks never wait for
        #: the checks of a pair that has run once.
        self.background_checks = False
        #: Where the checks run (``AlertRunner`` sets a ``ChecksProcess``); in-process if None.
        self.checks: ChecksRun | None = None
        self._stale: set[tuple[float, float]] = set()
        self._stale_lock = threading.Lock()

    @property
    def channels(self) -> Mapping[str, Channel]:
        """The configured channels by name."""
        return self.rule_set.channels

    # -- rules -----------------------------------------------------------------------------

    def rules(self) -> dict[str, Rule]:
        """Every rule: the rules file's and code's, then the stored ones (API) by name."""
        out = {r.name: r for r in self.rule_set.rules}
        out.update(self._code_rules)
        for name, spec, source, _, _ in self.store.list_alert_rules():
            if name in out:
                continue
            try:
                out[name] = parse_rule(spec, name, source=source)
            except ConfigError as exc:  # a rule stored by an older version: skip, say why
                log.warning("Stored alert rule %r is invalid and skipped: %s", name, exc)
        return out

    def check_rule(self, spec: Mapping[str, Any]) -> Rule:
        """Parse a rule document for saving; ``FieldError`` for a bad field or unknown channel."""
        rule = parse_rule(spec, "rule", source="api")
        if rule.name in {r.name for r in self.rule_set.rules} | set(self._code_rules):
            raise FieldError(
                f"rule.name: {rule.name!r} is defined in the rules file or in code",
                "rule.name",
                f"{rule.name!r} is defined in the rules file or in code; change it there",
            )
        check_channels(rule, self.channels, "rule")
        return rule

    def save_rule(self, spec: Mapping[str, Any]) -> tuple[Rule, bool]:
        """Check and store a rule (API); returns it and whether it is new."""
        rule = self.check_rule(spec)
        created = self.store.put_alert_rule(
            rule.name, rule.to_spec(), source="api", at=self.clock()
        )
        return rule, created

    # -- evaluation ------------------------------------------------------------------------

    def _measure(
        self, rules: Mapping[str, Rule], now: float
    ) -> tuple[dict[str, Active], dict[str, str]]:
        widest: dict[str, float] = {}
        for rule in rules.values():
            if rule.enabled and rule.point_name is not None:
                widest[rule.point_name] = max(widest.get(rule.point_name, 0.0), rule.window_s)
        ctx = EvalContext(
            self.store, now, points=self._points, point_windows=widest, findings=self._findings,
            background=self.background_checks, checks=self.checks,
        )  # fmt: skip
        active: dict[str, Active] = {}
        failed: dict[str, str] = {}
        for rule in rules.values():
            if not rule.enabled:
                continue
            try:
                active.update(active_series(rule, measure(rule, ctx)))
            except Exception as exc:  # one broken rule must not stop the others
                failed[rule.name] = f"{type(exc).__name__}: {exc}"
                log.warning("Alert rule %r failed to evaluate: %s", rule.name, failed[rule.name])
        if ctx.stale:
            with self._stale_lock:
                self._stale |= ctx.stale
        return active, failed

    @property
    def checks_due(self) -> bool:
        """Whether a tick served aged findings that ``refresh_checks`` should renew."""
        with self._stale_lock:
            return bool(self._stale)

    def refresh_checks(self) -> int:
        """Run the checks of the detection pairs a tick served aged (``background_checks``),
        outside the tick; returns how many pairs ran."""
        with self._stale_lock:
            pairs, self._stale = self._stale, set()
        checks = self.checks
        for window_s, baseline_s in sorted(pairs):
            now = self.clock()
            if checks is not None:
                found = checks(now, window_s, baseline_s)
            else:
                found = run_checks(self.store, now, window_s, baseline_s)
            self._findings[(window_s, baseline_s)] = (now, found)  # one atomic assignment
        return len(pairs)

    def tick(self, now: float | None = None) -> TickReport:
        """Evaluate every rule once (if this process holds the evaluator lease)."""
        now = self.clock() if now is None else now
        # Taking over (a start, a restart, a failover): since when did nobody evaluate?
        last = None if self._holding else self.store.lease_renewed_at(EVALUATOR_LEASE)
        if not self.store.take_lease(EVALUATOR_LEASE, self.owner, now=now, ttl=self.lease_seconds):
            self._holding = False
            return TickReport(now, evaluated=False)
        self._holding = True
        downtime = max(0.0, now - last) if last is not None else 0.0
        rules = self.rules()
        active, failed = self._measure(rules, now)
        with self.store.alert_transaction() as tx:
            changes = apply_tick(tx, rules, active, set(failed), now, downtime=downtime)
            sent = dispatch(
                tx, rules, changes.resolved, self.rule_set.inhibit_rules, now,
                link_base=self.link_base, open_alerts=changes.open_alerts,
                refresh=self._refresh(), quiet=self._quiet(),
            )  # fmt: skip
            firing = sent.open
        self.template_failures += changes.template_failures
        return TickReport(
            now, True, len(rules), failed, firing, changes.pending, len(changes.fired),
            len(changes.resolved), changes.template_failures, sent,
        )  # fmt: skip

    def _refresh(self) -> dict[str, float]:
        """Channels that forget alerts not re-sent in time (a resend interval in describe())."""
        out: dict[str, float] = {}
        for name, channel in self.channels.items():
            every = channel.describe().get("resend_interval_s")
            if isinstance(every, (int, float)) and every > 0:
                out[name] = float(every)
        return out

    def send_test(self, channel: str, who: str) -> str:
        """Send a test notification through ``channel`` now, past the outbox: the same send,
        and so the same network guard (DNS answers and the allow-list are checked again).

        Returns its idempotency key; ``KeyError`` for an unknown channel, ``DeliveryError``
        when it fails (its message names the host, never the URL's path or the answer's body).
        """
        from llmpulse.alerting.channels import AlertItem, Notification

        found = self.channels[channel]
        now = self.clock()
        key = f"test-{uuid.uuid4().hex}"
        item = AlertItem(
            fingerprint=key[-16:], rule="llmpulse_test", severity="info", status="firing",
            labels={"alertname": "llmpulse_test", "channel": channel},
            summary=f"Test notification from llmpulse, sent by {who}", starts_at=now,
        )  # fmt: skip
        found.send(Notification(key, f"test:{channel}", "firing", (item,)))
        return key

    def _quiet(self) -> frozenset[str]:
        """Channels of the rules file that get no resolved notices (``send_resolved``)."""
        sends = resolved_channels(self.rule_set.channel_specs)
        return frozenset(name for name, yes in sends.items() if not yes)

    def release(self) -> None:
        """Give up the evaluator lease (on shutdown), so another process takes over at once."""
        self._holding = False
        try:
            self.store.release_lease(EVALUATOR_LEASE, self.owner)
        except LlmpulseError:
            log.warning("Could not release the alert evaluator lease", exc_info=True)

    # -- acknowledge and resolve -----------------------------------------------------------

    def acknowledge(self, alert_id: int, who: str, note: str | None = None) -> AlertRecord | None:
        """Acknowledge a firing incident: no more repeats or escalations. ``None`` if unknown.

        An incident already resolved is returned unchanged: acknowledging never reopens it.
        """
        now = self.clock()
        with self.store.alert_transaction() as tx:
            alert = tx.get_alert(alert_id)
            if alert is None or alert.state != "firing" or alert.acknowledged_at is not None:
                return alert
            tx.update_alert(alert_id, acknowledged_at=now, acknowledged_by=who, ack_note=note)
            tx.add_event(alert_id, now, "acknowledged", who, note)
            return tx.get_alert(alert_id)

    def resolve(self, alert_id: int, who: str, note: str | None = None) -> AlertRecord | None:
        """Resolve a firing incident by hand, queueing its resolved notice in the same transaction.

        Its series is held until the condition clears; crossing again later is a new incident.
        """
        now = self.clock()
        rules = self.rules()
        with self.store.alert_transaction() as tx:
            alert = tx.get_alert(alert_id)
            if alert is None or alert.state != "firing":
                return alert
            done = resolve(tx, alert, now, who, note)
            series = tx.series().get(alert.fingerprint)
            if series is not None and series.alert_id == alert_id:
                held = SeriesRecord(
                    series.fingerprint, series.rule, series.labels, "held", series.active_at,
                    series.last_true_at, alert_id,
                )  # fmt: skip
                tx.put_series(held)
            dispatch(tx, rules, [done], (), now, link_base=self.link_base, resolved_only=True,
                     quiet=self._quiet())  # fmt: skip
            return tx.get_alert(alert_id)
