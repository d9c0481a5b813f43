"""Alertmanager's group timers (group_wait, group_interval, repeat_interval) and deduplication,
and the restart grace of pending and repeat timers, with a controllable clock (no sleeps)."""

from __future__ import annotations

import pytest

from llmpulse.alerting._grouping import Timers, decide
from llmpulse.alerting._transitions import FOR_OUTAGE_TOLERANCE_SECONDS
from llmpulse.store.queries.alerts import GroupRecord

from .conftest import T0, Switch, _engine, _rule, _sent


def _rows(store) -> int:
    return len(store.outbox())


class TestGroupWait:
    def test_alerts_firing_together_arrive_in_one_message(self, store, clock, switched) -> None:
        """group_wait: the first alert waits, the second joins it, one message after the wait."""
        sw, engine = switched(group_wait_s=30)
        sw.set(model="a")
        engine.tick()
        clock.advance(15)
        sw.set(model="b")
        engine.tick()
        assert _rows(store) == 0
        clock.advance(15)  # T0+30: a's group_wait is over
        assert engine.tick().dispatched.notifications == 1
        assert _sent(store) == [("ops", "firing", [("a", "firing"), ("b", "firing")])]

    def test_alert_resolved_inside_group_wait_is_never_notified(
        self, store, clock, switched
    ) -> None:
        """Fire and resolve inside group_wait: the channel hears nothing, not even resolved."""
        sw, engine = switched(group_wait_s=60)
        sw.set(model="a")
        engine.tick()
        clock.advance(30)
        sw.set(None, model="a")
        assert engine.tick().resolved == 1
        for _ in range(3):
            clock.advance(60)
            engine.tick()
        assert _rows(store) == 0


class TestGroupInterval:
    def test_changes_wait_for_the_interval_and_go_together(self, store, clock, switched) -> None:
        """After a notification, a new alert and a resolution wait for group_interval."""
        sw, engine = switched(group_interval_s=300)
        sw.set(model="a")
        engine.tick()  # T0: a new group, no group_wait: sent now
        clock.advance(60)
        sw.set(model="b")
        engine.tick()  # T0+60: b waits
        clock.advance(180)
        engine.tick()  # T0+240: still inside the interval
        assert _rows(store) == 1
        clock.advance(60)
        engine.tick()  # T0+300
        clock.advance(60)
        sw.set(None, model="a")
        engine.tick()  # T0+360: a resolves; its notice waits until T0+600
        clock.advance(180)
        engine.tick()
        assert _rows(store) == 2
        clock.advance(60)
        engine.tick()  # T0+600
        assert _sent(store) == [
            ("ops", "firing", [("a", "firing")]),
            ("ops", "firing", [("a", "firing"), ("b", "firing")]),
            ("ops", "firing", [("a", "resolved"), ("b", "firing")]),
        ]

    def test_fire_resolve_fire_inside_the_interval_sends_nothing(
        self, store, clock, switched
    ) -> None:
        """AM#2398: fire → resolve → fire between two turns of the group sends no resolved
        notice and no new firing one (the channel rightly believes it fires); the new incident
        is still a new id, and its resolution is announced later."""
        sw, engine = switched(group_interval_s=300)
        sw.set(model="a")
        engine.tick()
        clock.advance(60)
        sw.set(None, model="a")
        assert engine.tick().resolved == 1
        clock.advance(60)
        sw.set(model="a")
        assert engine.tick().fired == 1
        for _ in range(4):  # T0+180 .. T0+360: the group's turns come and go
            clock.advance(60)
            engine.tick()
        assert _sent(store) == [("ops", "firing", [("a", "firing")])]
        newer, older = store.alert_page(filters={})
        assert newer.id != older.id and older.state == "resolved" and newer.state == "firing"
        sw.set(None, model="a")
        clock.advance(60)
        engine.tick()
        [_, resolved] = store.outbox()
        assert [(i["status"], i["evidence"]["alert_id"]) for i in resolved.payload["items"]] == [
            ("resolved", newer.id)
        ]

    def test_repeat_is_never_sooner_than_the_interval(self, store, clock, switched) -> None:
        """repeat_interval 10m with group_interval 15m repeats every 15m (AM rounds it up)."""
        sw, engine = switched(repeat_interval_s=600, group_interval_s=900)
        sw.set(model="a")
        engine.tick()
        clock.advance(600)
        engine.tick()
        assert _rows(store) == 1
        clock.advance(300)
        engine.tick()
        assert _rows(store) == 2

    def test_acknowledged_group_stays_quiet_but_sends_its_resolution(
        self, store, clock, switched
    ) -> None:
        """An acknowledged alert is not taken for resolved (no notice while it fires), repeats
        stop, and its resolution is still announced at the group's turn."""
        sw, engine = switched(group_interval_s=300, repeat_interval_s=600)
        sw.set(model="a")
        engine.tick()
        [alert] = store.alert_page(filters={})
        engine.acknowledge(alert.id, "ana")
        for _ in range(4):
            clock.advance(300)
            engine.tick()
        assert _rows(store) == 1
        sw.set(None, model="a")
        clock.advance(300)
        engine.tick()
        assert _sent(store)[-1] == ("ops", "resolved", [("a", "resolved")])


class TestLabels:
    def test_group_by_dots_turns_grouping_off(self, store, switched) -> None:
        """group_by: ["..."] puts every alert in a group of its own (Alertmanager)."""
        from llmpulse.alerting import parse_rule

        doc = {"name": "x", "metric": "errors", "warning": 1, "group_by": ["..."]}
        assert parse_rule(doc).group_by == ("...",)
        sw, engine = switched(group_by=("...",))
        sw.set(model="a")
        sw.set(model="b")
        assert engine.tick().dispatched.notifications == 2
        assert sorted(_sent(store)) == [("ops", "firing", [("a", "firing")]),
                                        ("ops", "firing", [("b", "firing")])]  # fmt: skip

    def test_two_samples_with_one_label_set_fail_the_rule(self, store, clock) -> None:
        """Two samples that become the same labels fail the evaluation (Prometheus), which
        then changes nothing, instead of one value silently winning."""
        from llmpulse.alerting import Rule, Sample

        twice = Rule("twice", type="callable", channels=("ops",),
                     condition=lambda ctx: [Sample({"model": "a"}, 1.0), Sample({"model": "a"}, 2.0)])  # fmt: skip
        report = _engine(store, clock, twice).tick()
        assert "same labels" in report.failed["twice"] and report.fired == 0
        assert _rows(store) == 0


class TestDecide:
    def test_alertmanager_dedup_rules(self) -> None:
        """The decision table of Alertmanager's DedupStage, one case per row."""
        t = Timers(wait=30, interval=300, repeat=3600)
        seen = GroupRecord("ops", "g", T0, frozenset({"x"}))
        # first entry with nothing firing (fired and resolved before any turn): nothing
        assert not decide(None, set(), set(), None, t, T0).send
        assert decide(None, {"x"}, {"x"}, T0, t, T0 + 10).why == "group_wait"
        assert decide(None, {"x"}, {"x"}, T0, t, T0 + 30).send
        # a new firing alert: notify, at the group's turn
        assert decide(seen, {"x", "y"}, {"x", "y"}, T0, t, T0 + 299).why == "group_interval"
        assert decide(seen, {"x", "y"}, {"x", "y"}, T0, t, T0 + 300).why == "new firing alert"
        # all resolved: notify with the resolved alerts (unless none sends resolved notices)
        gone = decide(seen, set(), set(), None, t, T0 + 300)
        assert gone.send and gone.resolved == {"x"}
        quiet = decide(seen, set(), set(), None, t, T0 + 300, announce=lambda fp: False)
        assert not quiet.send and quiet.resolved == {"x"}
        # unchanged: only once the repeat interval passed; muted/acked ones are not resolved
        assert not decide(seen, {"x"}, {"x"}, T0, t, T0 + 3599).send
        assert decide(seen, {"x"}, {"x"}, T0, t, T0 + 3600).why == "repeat"
        assert not decide(seen, set(), {"x"}, None, t, T0 + 7200).send


class TestRestartGrace:
    def test_graceful_restart_resumes_the_pending_timer(self, store, clock) -> None:
        """A released lease (a deploy) keeps when it was last renewed: the next evaluator does
        not count the gap, and needs only the rest of `for`."""
        sw = Switch()
        sw.set(model="a")
        old = _engine(store, clock, _rule(sw, for_s=300), owner="old")
        for _ in range(5):
            old.tick()
            clock.advance(30)
        old.release()  # T0+150; the last evaluation was at T0+120
        clock.advance(60)
        new = _engine(store, clock, _rule(sw, for_s=300), owner="new")
        assert new.tick().fired == 0  # T0+210
        clock.advance(179)
        assert new.tick().fired == 0  # T0+389
        clock.advance(1)
        assert new.tick().fired == 1  # T0+390 = 300 s observed (120 before, 180 after)

    def test_long_outage_starts_pending_over(self, store, clock) -> None:
        """Past the outage tolerance the stored pending state is stale: `for` starts again."""
        sw = Switch()
        sw.set(model="a")
        _engine(store, clock, _rule(sw, for_s=300), owner="old").tick()
        clock.advance(FOR_OUTAGE_TOLERANCE_SECONDS + 60)
        new = _engine(store, clock, _rule(sw, for_s=300), owner="new")
        start = clock.now
        assert new.tick().fired == 0
        clock.advance(299)
        assert new.tick().fired == 0
        clock.advance(1)
        assert new.tick().fired == 1
        [alert] = store.alert_page(filters={})
        assert alert.started_at == start

    def test_repeat_and_group_timers_survive_a_restart(self, store, clock) -> None:
        """A new evaluator neither repeats early nor flushes a group before its interval: the
        notification log is in the store."""
        sw = Switch()
        kw = {"group_interval_s": 300, "repeat_interval_s": 4 * 3600}
        sw.set(model="a")
        _engine(store, clock, _rule(sw, **kw), owner="old").tick()  # T0: sent
        clock.advance(60)
        sw.set(model="b")
        _engine(store, clock, _rule(sw, **kw), owner="old").tick()  # b waits for T0+300
        clock.advance(150)  # the old evaluator dies; a new one takes over at T0+210
        new = _engine(store, clock, _rule(sw, **kw), owner="new")
        new.tick()
        assert _rows(store) == 1
        clock.advance(90)
        new.tick()  # T0+300: the batched change
        assert _sent(store)[-1] == ("ops", "firing", [("a", "firing"), ("b", "firing")])
        clock.advance(2 * 3600)  # another restart, half way to the repeat
        newer = _engine(store, clock, _rule(sw, **kw), owner="newer")
        newer.tick()
        assert _rows(store) == 2
        clock.advance(2 * 3600)
        newer.tick()  # T0+300+4h
        assert _rows(store) == 3


class TestSendResolvedPerChannel:
    def test_email_gets_no_resolved_notice_by_default(self, store, clock) -> None:
        """Alertmanager's defaults: email send_resolved false, webhook true; a channel's
        `send_resolved: true` turns it on."""
        from llmpulse.alerting import AlertEngine, RuleSet
        from llmpulse.alerting._load import resolved_channels
        from llmpulse.alerting.channels import FunctionChannel

        specs = {"ops": {"type": "webhook"}, "mail": {"type": "email"},
                 "mail2": {"type": "email", "send_resolved": True}}  # fmt: skip
        assert resolved_channels(specs) == {"ops": True, "mail": False, "mail2": True}
        channels = {n: FunctionChannel(n, lambda note: None) for n in specs}
        sw = Switch()
        rule = _rule(sw, channels=("ops", "mail", "mail2"))
        engine = AlertEngine(store, RuleSet(channels=channels, channel_specs=specs),
                             rules=[rule], clock=clock, owner="e1")  # fmt: skip
        sw.set(model="a")
        engine.tick()
        sw.set(None, model="a")
        clock.advance(30)
        engine.tick()
        assert sorted((c, s) for c, s, _ in _sent(store)) == [
            ("mail", "firing"), ("mail2", "firing"), ("mail2", "resolved"),
            ("ops", "firing"), ("ops", "resolved"),
        ]  # fmt: skip
        clock.advance(30)
        sw.set(model="a")
        engine.tick()  # the quiet channel forgot the old one: the new incident is news to all
        assert sum(c == "mail" for c, _, _ in _sent(store)) == 2

    def test_send_resolved_must_be_a_boolean(self, tmp_path) -> None:
        """A channel's send_resolved that is not true/false is named at its line."""
        from llmpulse.alerting import load_rules
        from llmpulse.errors import ConfigError

        path = tmp_path / "r.yaml"
        path.write_text("channels:\n  ops:\n    type: webhook\n    send_resolved: sometimes\n")
        with pytest.raises(ConfigError, match=r"line 4: channels\.ops\.send_resolved: must be"):
            load_rules(path)
