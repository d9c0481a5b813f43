"""The engine's lifecycle with a controllable clock: for, repeat, escalation, silences,
inhibition, grouping, resolve, acknowledge, restarts and the evaluator lease (no sleeps)."""

from __future__ import annotations

import pytest

from llmpulse.alerting import AlertEngine, Rule, RuleSet, Sample
from llmpulse.alerting._rules import Escalation
from llmpulse.alerting._silences import new_silence

from .conftest import T0, Clock, Switch, _channels, _engine, _rule, _sent, llm


class TestLifecycle:
    def test_pending_then_firing_after_for(self, store, clock, switched) -> None:
        """A crossing is pending until it held for `for`, then fires and notifies once."""
        sw, engine = switched(for_s=120)
        sw.set(model="a")
        assert engine.tick().pending == 1
        clock.advance(60)
        assert engine.tick().fired == 0
        clock.advance(60)
        report = engine.tick()
        assert (report.fired, report.firing) == (1, 1)
        [alert] = store.alert_page(filters={})
        assert (alert.state, alert.started_at, alert.fired_at) == ("firing", T0, T0 + 120)
        assert _sent(store) == [("ops", "firing", [("a", "firing")])]
        clock.advance(30)
        engine.tick()  # still firing: deduplicated by fingerprint, nothing new
        assert len(store.alert_page(filters={})) == 1 and len(store.outbox()) == 1

    def test_pending_missing_once_restarts_timer(self, clock, switched) -> None:
        """A pending series absent from one evaluation starts over (Prometheus)."""
        sw, engine = switched(for_s=120)
        sw.set(model="a")
        engine.tick()
        clock.advance(60)
        sw.set(None, model="a")
        engine.tick()
        sw.set(model="a")
        clock.advance(60)
        engine.tick()
        clock.advance(60)
        assert engine.tick().fired == 0
        clock.advance(60)
        assert engine.tick().fired == 1

    def test_resolved_notice_and_new_incident_on_refire(self, store, clock, switched) -> None:
        """Fire → resolve → fire sends the resolved notice and opens a new incident id."""
        sw, engine = switched()
        sw.set(model="a")
        engine.tick()
        clock.advance(30)
        sw.set(None, model="a")
        assert engine.tick().resolved == 1
        clock.advance(30)
        sw.set(model="a")
        engine.tick()
        assert _sent(store) == [
            ("ops", "firing", [("a", "firing")]),
            ("ops", "resolved", [("a", "resolved")]),
            ("ops", "firing", [("a", "firing")]),
        ]
        newer, older = store.alert_page(filters={})
        assert newer.id != older.id and older.state == "resolved" and newer.state == "firing"

    def test_repeat_interval_and_acknowledge(self, store, clock, switched) -> None:
        """Firing alerts repeat every repeat_interval until acknowledged."""
        sw, engine = switched(repeat_interval_s=600)
        sw.set(model="a")
        engine.tick()
        clock.advance(590)
        engine.tick()
        assert len(store.outbox()) == 1
        clock.advance(10)
        engine.tick()
        assert len(store.outbox()) == 2
        [alert] = store.alert_page(filters={})
        acked = engine.acknowledge(alert.id, "ana", "looking")
        assert (acked.acknowledged_by, acked.ack_note, acked.acknowledged_at) == (
            "ana",
            "looking",
            clock.now,
        )
        clock.advance(3600)
        engine.tick()
        assert len(store.outbox()) == 2
        sw.set(None, model="a")
        engine.tick()  # the resolved notice still goes out
        assert _sent(store)[-1] == ("ops", "resolved", [("a", "resolved")])

    def test_escalation_when_not_acknowledged(self, store, clock) -> None:
        """After `after` without an acknowledgement the escalation channel is notified too,
        and later gets the resolved notice."""
        sw = Switch()
        rule = _rule(sw, escalation=(Escalation(900, ("pager",)),))
        engine = _engine(store, clock, rule)
        sw.set(model="a")
        engine.tick()
        clock.advance(899)
        engine.tick()
        assert [c for c, _, _ in _sent(store)] == ["ops"]
        clock.advance(1)
        engine.tick()
        assert [c for c, _, _ in _sent(store)] == ["ops", "pager"]
        assert store.outbox()[-1].payload["escalation_level"] == 1
        clock.advance(60)
        sw.set(None, model="a")
        engine.tick()
        assert sorted(c for c, s, _ in _sent(store) if s == "resolved") == ["ops", "pager"]

    def test_acknowledged_alert_does_not_escalate(self, store, clock, switched) -> None:
        """An acknowledgement before `after` stops the escalation."""
        sw, engine = switched(escalation=(Escalation(900, ("pager",)),))
        sw.set(model="a")
        engine.tick()
        [alert] = store.alert_page(filters={})
        clock.advance(100)
        engine.acknowledge(alert.id, "bo")
        clock.advance(2000)
        engine.tick()
        assert [c for c, _, _ in _sent(store)] == ["ops"]

    def test_ack_on_resolved_alert_does_not_reopen(self, store, clock, switched) -> None:
        """Acknowledging an incident that already resolved changes nothing (oncall#3161)."""
        sw, engine = switched()
        sw.set(model="a")
        engine.tick()
        sw.set(None, model="a")
        clock.advance(30)
        engine.tick()
        [alert] = store.alert_page(filters={})
        after = engine.acknowledge(alert.id, "late")
        assert (after.state, after.acknowledged_at) == ("resolved", None)
        assert store.alert_page(filters={"active_only": True}) == []

    def test_manual_resolve_holds_until_condition_clears(self, store, clock, switched) -> None:
        """Resolved by hand: a resolved notice now, silence while still crossing, and a new
        incident only after the condition cleared and came back."""
        sw, engine = switched()
        sw.set(model="a")
        engine.tick()
        [alert] = store.alert_page(filters={})
        done = engine.resolve(alert.id, "ana", "fixed the key")
        assert (done.state, done.resolved_by, done.resolve_note) == (
            "resolved",
            "ana",
            "fixed the key",
        )
        assert _sent(store)[-1] == ("ops", "resolved", [("a", "resolved")])
        clock.advance(30)
        assert engine.tick().fired == 0
        sw.set(None, model="a")
        clock.advance(30)
        engine.tick()
        sw.set(model="a")
        clock.advance(30)
        assert engine.tick().fired == 1
        kinds = [k for _, k, _, _ in store.alert_history(alert.id)]
        assert kinds == ["fired", "notified", "resolved"]


class TestGroupingAndMuting:
    def test_alerts_of_one_rule_are_one_notification(self, store, switched) -> None:
        """Grouped by alertname (the default): two models firing together send one message."""
        sw, engine = switched()
        sw.set(model="a")
        sw.set(model="b")
        engine.tick()
        assert _sent(store) == [("ops", "firing", [("a", "firing"), ("b", "firing")])]

    def test_group_by_label_splits_notifications(self, store, switched) -> None:
        """group_by: [model] sends one notification per model."""
        sw, engine = switched(group_by=("model",))
        sw.set(model="a")
        sw.set(model="b")
        engine.tick()
        assert sorted(_sent(store)) == [
            ("ops", "firing", [("a", "firing")]),
            ("ops", "firing", [("b", "firing")]),
        ]

    def test_critical_inhibits_warning_of_same_labels(self, store, clock) -> None:
        """While critical fires for model a, a's warning is muted; b's warning is not."""
        rule = Rule("lat", type="callable", condition=lambda ctx: [
            Sample({"model": "a"}, 9, "critical"), Sample({"model": "a"}, 9, "warning"),
            Sample({"model": "b"}, 3, "warning")], channels=("ops",), group_by=("severity",))  # fmt: skip
        engine = _engine(store, clock, rule)
        report = engine.tick()
        assert report.dispatched.muted == 1
        items = sorted(
            (i["labels"]["model"], i["severity"])
            for r in store.outbox()
            for i in r.payload["items"]
        )
        assert items == [("a", "critical"), ("b", "warning")]

    def test_warning_notified_once_its_critical_resolves(self, store, clock) -> None:
        """The inhibited warning is sent when the critical that muted it resolves."""
        samples = [Sample({"model": "a"}, 9, "critical"), Sample({"model": "a"}, 9, "warning")]
        rule = Rule("r", type="callable", condition=lambda ctx: list(samples), channels=("ops",),
                    group_by=("alertname", "severity"))  # fmt: skip
        engine = _engine(store, clock, rule)
        engine.tick()
        assert [(r.payload["items"][0]["severity"]) for r in store.outbox()] == ["critical"]
        samples.pop(0)  # the value fell below the critical threshold only
        clock.advance(30)
        engine.tick()
        sent = [(r.payload["status"], r.payload["items"][0]["severity"]) for r in store.outbox()]
        assert sorted(sent[1:]) == [("firing", "warning"), ("resolved", "critical")]

    def test_silence_mutes_until_it_ends(self, store, clock, switched) -> None:
        """A silenced alert sends nothing; when the silence ends it is notified like a new one."""
        sw, engine = switched()
        store.add_silence(new_silence([{"name": "model", "op": "=~", "value": "a|c"}],
                                      starts_at=T0, ends_at=T0 + 600, created_by="ana",
                                      comment="deploy", now=T0))  # fmt: skip
        sw.set(model="a")
        sw.set(model="b")
        engine.tick()
        assert _sent(store) == [("ops", "firing", [("b", "firing")])]
        clock.advance(599)
        engine.tick()
        assert len(store.outbox()) == 1
        clock.advance(1)
        engine.tick()
        assert _sent(store)[-1] == ("ops", "firing", [("a", "firing"), ("b", "firing")])

    def test_silence_matching_everything_is_refused(self) -> None:
        """foo=~".*" alone would silence every alert: refused."""
        from llmpulse.errors import ConfigError

        with pytest.raises(ConfigError, match="would match every alert"):
            new_silence([{"name": "foo", "op": "=~", "value": ".*"}], starts_at=T0,
                        ends_at=T0 + 60, created_by="x", comment="", now=T0)  # fmt: skip
        with pytest.raises(ConfigError, match="ends_at: is in the past"):
            new_silence([{"name": "model", "value": "a"}], starts_at=T0 - 120,
                        ends_at=T0 - 60, created_by="x", comment="", now=T0)  # fmt: skip


class TestRobustness:
    def test_keep_firing_for_bridges_a_gap(self, store, clock, switched) -> None:
        """With keep_firing_for, one evaluation without the series sends no resolved notice."""
        sw, engine = switched(keep_firing_for_s=120)
        sw.set(model="a")
        engine.tick()
        sw.set(None, model="a")
        clock.advance(60)
        assert engine.tick().resolved == 0
        sw.set(model="a")
        clock.advance(60)
        engine.tick()
        sw.set(None, model="a")
        clock.advance(119)
        assert engine.tick().resolved == 0
        clock.advance(1)
        assert engine.tick().resolved == 1
        assert [s for _, s, _ in _sent(store)] == ["firing", "resolved"]

    def test_restart_keeps_pending_time_and_keep_firing(self, store, clock) -> None:
        """A new engine on the same store continues the pending timer from the time observed
        before the crash: the downtime counts neither for nor against it."""
        sw = Switch()
        sw.set(model="a")
        old = _engine(store, clock, _rule(sw, for_s=300), owner="old")
        for _ in range(5):  # seen crossing at T0 .. T0+120: 120 s of the 300 observed
            assert old.tick().fired == 0
            clock.advance(30)
        clock.advance(150)  # T0+300: the old process died at T0+120; a new one takes over
        engine = _engine(store, clock, _rule(sw, for_s=300), owner="new")
        assert engine.tick().fired == 0  # not early: the 180 s nobody looked do not count
        clock.advance(150)
        assert engine.tick().fired == 0  # T0+450
        clock.advance(30)
        assert engine.tick().fired == 1  # T0+480: 120 s before + 180 s after, not 300 more

    def test_restart_during_keep_firing_emits_no_resolved(self, store, clock) -> None:
        """keep_firing_for survives a restart: a new engine inside the window resolves nothing."""
        sw = Switch()
        sw.set(model="a")
        _engine(store, clock, _rule(sw, keep_firing_for_s=300), owner="old").tick()
        sw.set(None, model="a")
        clock.advance(120)  # the old process died; a new one evaluates inside keep_firing_for
        engine = _engine(store, clock, _rule(sw, keep_firing_for_s=300), owner="new")
        assert engine.tick().resolved == 0
        clock.advance(179)
        assert engine.tick().resolved == 0
        clock.advance(1)
        assert engine.tick().resolved == 1
        assert [s for _, s, _ in _sent(store)] == ["firing", "resolved"]

    def test_failing_rule_changes_nothing(self, store, clock) -> None:
        """A rule whose query fails neither resolves nor fires; the others still run."""
        sw, other = Switch(), Switch()
        engine = _engine(store, clock, _rule(sw), _rule(other, name="other"))
        sw.set(model="a")
        engine.tick()
        sw.broken = True
        other.set(model="z")
        clock.advance(30)
        report = engine.tick()
        assert "r" in report.failed and report.resolved == 0 and report.fired == 1
        assert len(store.alert_page(filters={"active_only": True})) == 2

    def test_broken_template_still_notifies(self, store, switched) -> None:
        """A summary that cannot render still delivers fallback text, and is counted."""
        sw, engine = switched(summary="{model} at {value:.1f} for {missing}")
        sw.set(model="a")
        report = engine.tick()
        assert report.template_failures == 1 and engine.template_failures == 1
        [row] = store.outbox()
        assert row.payload["items"][0]["summary"].startswith("<error expanding template:")

    def test_one_evaluator_per_database(self, store, clock) -> None:
        """Two engines on one database: only the lease holder evaluates until its lease lapses."""
        sw = Switch()
        a = _engine(store, clock, _rule(sw), owner="a")
        b = _engine(store, clock, _rule(sw), owner="b")
        sw.set(model="x")
        assert a.tick().evaluated and not b.tick().evaluated
        clock.advance(a.lease_seconds - 1)
        assert not b.tick().evaluated
        clock.advance(1)
        assert b.tick().evaluated and not a.tick().evaluated
        b.release()
        assert a.tick().evaluated
        assert len(store.alert_page(filters={})) == 1 and len(store.outbox()) == 1

    def test_statistics(self, store, clock, switched) -> None:
        """Counts by severity and rule; MTTA and MTTR in seconds."""
        sw, engine = switched()
        sw.set("critical", model="a")
        sw.set("warning", model="b")
        engine.tick()
        alerts = {a.labels["model"]: a for a in store.alert_page(filters={})}
        clock.advance(60)
        engine.acknowledge(alerts["a"].id, "ana")
        clock.advance(60)
        engine.resolve(alerts["a"].id, "ana")
        clock.advance(180)
        engine.resolve(alerts["b"].id, "bo")
        stats = store.alert_statistics(T0 - 1)
        assert stats["by_severity"] == {"critical": 1, "warning": 1}
        assert stats["by_rule"] == {"r": 2}
        assert stats["mtta_seconds"] == 60.0
        assert stats["mttr_seconds"] == (120.0 + 300.0) / 2


class TestOverStoredSpans:
    def test_latency_rule_fires_and_resolves_from_rollups(self, store, clock) -> None:
        """A real threshold rule over stored spans fires per model and resolves when it recovers."""
        from llmpulse.alerting import parse_rule

        rule = parse_rule({"name": "slow", "metric": "latency_p95_ms", "by": ["model"],
                           "window": "5m", "warning": 2000, "critical": 5000,
                           "channels": ["ops"]})  # fmt: skip
        engine = AlertEngine(store, RuleSet(channels=_channels("ops")), rules=[rule], clock=clock)
        store.write(spans=[llm(T0 - 60 + i, model="m", latency_ms=3000) for i in range(10)])
        engine.tick()
        [alert] = store.alert_page(filters={"model": "m"})
        assert (alert.severity, alert.threshold, alert.window_s) == ("warning", 2000, 300)
        assert alert.value == pytest.approx(3000, rel=0.03)
        clock.advance(600)  # the slow minute left the window
        store.write(spans=[llm(clock.now - 30, model="m", latency_ms=100)])
        assert engine.tick().resolved == 1


class TestMuteTimes:
    def test_sydney_window_keeps_local_hours_across_dst(self, store) -> None:
        """A 22:00-23:00 Sydney mute window mutes 22:30 local both before and after the DST
        change of 2026-04-05 (UTC+11 → UTC+10): it is compared in Sydney's wall clock."""
        from datetime import datetime, timezone
        from zoneinfo import ZoneInfo

        from llmpulse.alerting import parse_rule

        rule = parse_rule({"name": "r", "metric": "errors", "warning": 1, "mute_times": [
            {"times": [{"start": "22:00", "end": "23:00"}], "location": "Australia/Sydney"}]})  # fmt: skip
        [window] = rule.mute_times
        sydney = ZoneInfo("Australia/Sydney")
        for day in (3, 6):  # before and after the change
            inside = datetime(2026, 4, day, 22, 30, tzinfo=sydney).timestamp()
            outside = datetime(2026, 4, day, 23, 30, tzinfo=sydney).timestamp()
            assert window.contains(inside) and not window.contains(outside)
        # The same UTC hour is inside before the change and outside after it.
        assert window.contains(datetime(2026, 4, 3, 11, 30, tzinfo=timezone.utc).timestamp())
        assert not window.contains(datetime(2026, 4, 6, 11, 30, tzinfo=timezone.utc).timestamp())
        assert parse_rule(rule.to_spec()) == rule

    def test_weekend_window_wrapping_midnight_mutes_then_notifies(self, store) -> None:
        """An alert firing inside its rule's mute window is sent once the window ends."""
        from datetime import datetime, timezone

        from llmpulse.alerting._mute_times import parse_mute_times

        sat_2330 = datetime(2030, 1, 5, 23, 30, tzinfo=timezone.utc).timestamp()  # a Saturday
        clock = Clock(sat_2330)
        sw = Switch()
        mute = parse_mute_times([{"weekdays": ["saturday"], "times": [{"start": "23:00",
                                  "end": "01:00"}]}], "mute_times")  # fmt: skip
        engine = _engine(store, clock, _rule(sw, mute_times=mute))
        sw.set(model="a")
        assert engine.tick().dispatched.muted == 1
        clock.advance(3600)  # Sunday 00:30: still the Saturday window (it wraps midnight)
        engine.tick()
        assert store.outbox() == []
        clock.advance(1800)  # 01:00: the window ended
        engine.tick()
        assert _sent(store) == [("ops", "firing", [("a", "firing")])]

    @pytest.mark.parametrize(
        ("spec", "words"),
        [
            ({"location": "Mars/Olympus"}, "not a time zone"),
            ({"weekdays": ["funday"]}, "not a weekday"),
            ({"times": [{"start": "25:00", "end": "26:00"}]}, "not a time of day"),
        ],
    )
    def test_bad_mute_times_are_named(self, spec, words) -> None:
        """A bad zone, weekday or time names its field."""
        from llmpulse.alerting import parse_rule
        from llmpulse.errors import ConfigError

        with pytest.raises(ConfigError, match=words):
            parse_rule({"name": "r", "metric": "errors", "warning": 1, "mute_times": [spec]})


class _Forgetful:
    """A channel that forgets alerts not re-sent within 10 minutes (as Alertmanager's endsAt)."""

    kind = "forgetful"

    def __init__(self, name: str) -> None:
        self.name = name

    def send(self, notification) -> None:  # noqa: ANN001 - the Channel protocol
        pass

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "type": self.kind, "resend_interval_s": 600.0}


class TestRefresh:
    def test_forgetful_channel_is_refreshed_even_when_acknowledged(self, store, clock) -> None:
        """A channel with a resend interval hears of a firing alert that often (acknowledged
        or not), without resetting the other channels' repeat clock."""
        sw = Switch()
        rs = RuleSet(channels={"am": _Forgetful("am"), **_channels("ops")})
        engine = AlertEngine(store, rs, clock=clock, owner="e",
                             rules=[_rule(sw, channels=("am", "ops"), repeat_interval_s=3600)])  # fmt: skip
        sw.set(model="a")
        engine.tick()
        assert sorted(c for c, _, _ in _sent(store)) == ["am", "ops"]
        [alert] = store.alert_page(filters={})
        engine.acknowledge(alert.id, "ana")
        for _ in range(6):  # an hour, in 10 minute steps
            clock.advance(600)
            engine.tick()
        channels = [c for c, _, _ in _sent(store)]
        assert channels.count("am") == 7 and channels.count("ops") == 1
        sw.set(None, model="a")
        clock.advance(60)
        engine.tick()
        assert sorted(c for c, s, _ in _sent(store) if s == "resolved") == ["am", "ops"]

    def test_refresh_does_not_reset_other_repeats(self, store, clock) -> None:
        """Unacknowledged: the forgetful channel every 10 minutes, the other every hour."""
        sw = Switch()
        rs = RuleSet(channels={"am": _Forgetful("am"), **_channels("ops")})
        engine = AlertEngine(store, rs, clock=clock, owner="e",
                             rules=[_rule(sw, channels=("am", "ops"), repeat_interval_s=3600)])  # fmt: skip
        sw.set(model="a")
        engine.tick()
        for _ in range(6):
            clock.advance(600)
            engine.tick()
        channels = [c for c, _, _ in _sent(store)]
        assert (channels.count("am"), channels.count("ops")) == (7, 2)
