"""Detection rules: alerts from llmpulse.checks findings over the rule's window, filtered by
check, subject and confidence, resolving when the finding is gone."""

from __future__ import annotations

import pytest

from llmpulse.alerting import AlertEngine, RuleSet, parse_rule
from tests.unit.checks.traffic import Incident, Traffic, make_spans

from .conftest import signal_refreshes, wait_for_first_report

T0 = 1_700_000_000.0
MIN = 60.0


@pytest.fixture
def incident_store(sqlite_store):
    """Four hours of two-model traffic; gpt-4o three times slower from 2:00 to 2:30."""
    traffic = Traffic(T0, 240, seed=1, incidents=(Incident(T0 + 120 * MIN, T0 + 150 * MIN,
                                                           latency_x=3.0),))  # fmt: skip
    assert sqlite_store.write(spans=make_spans(traffic)).rejected == 0
    return sqlite_store


def _rule(name: str, **doc):
    return parse_rule({"name": name, "type": "detection", "window": "1h", "baseline": "90m", **doc})


class TestDetectionRules:
    def test_latency_spike_fires_with_evidence_and_resolves(self, incident_store) -> None:
        """The spike's finding becomes a critical alert for gpt-4o carrying the finding's value,
        baseline and evidence; other checks and other models stay quiet; it resolves later."""
        now = [T0 + 150 * MIN]
        rules = [
            _rule("spikes", checks=["latency_spike"], filters={"model": "gpt-4o"}),
            _rule("errors", checks=["error_rate_jump"]),
            _rule("mini", checks=["latency_spike"], filters={"model": "gpt-4o-mini"}),
        ]
        engine = AlertEngine(incident_store, RuleSet(), rules=rules, clock=lambda: now[0])
        report = engine.tick()
        assert not report.failed
        [alert] = incident_store.alert_page(filters={})
        assert (alert.rule, alert.severity) == ("spikes", "critical")
        assert alert.labels["check"] == "latency_spike" and alert.labels["model"] == "gpt-4o"
        assert alert.baseline and 2.2 < alert.value / alert.baseline < 4.0
        assert alert.evidence["check"] == "latency_spike" and "window" in alert.evidence
        assert "p95 latency of gpt-4o" in alert.summary
        now[0] = T0 + 240 * MIN  # the last hour is quiet again
        assert engine.tick().resolved == 1

    def test_confidence_threshold(self, incident_store) -> None:
        """A finding below min_confidence (or without a confidence) raises nothing."""
        from llmpulse.alerting import EvalContext

        now = T0 + 150 * MIN
        findings = EvalContext(incident_store, now).findings(3600.0, 5400.0)
        confidences = [f.confidence for f in findings if f.check == "latency_spike"]
        assert confidences
        above = max(c or 0.0 for c in confidences)
        strict = _rule("strict", checks=["latency_spike"], min_confidence=min(1.0, above + 1e-9))
        engine = AlertEngine(incident_store, RuleSet(), rules=[strict], clock=lambda: now)
        assert engine.tick().fired == 0

    def test_findings_are_reused_for_a_twelfth_of_the_window(self, incident_store) -> None:
        """The checks (seconds of work) run once per window/baseline pair per 1-5 minutes, not
        at every 30 s tick; the engine's ticks share the findings until they are that old."""
        from llmpulse.alerting import EvalContext
        from llmpulse.alerting._query import findings_max_age

        assert [findings_max_age(w) for w in (300, 3600, 86400)] == [60.0, 300.0, 300.0]
        kept: dict = {}
        now = T0 + 150 * MIN
        first = EvalContext(incident_store, now, findings=kept).findings(3600.0, 5400.0)
        again = EvalContext(incident_store, now + 299, findings=kept).findings(3600.0, 5400.0)
        assert again is first and kept[(3600.0, 5400.0)][0] == now
        later = EvalContext(incident_store, now + 300, findings=kept).findings(3600.0, 5400.0)
        assert later is not first and kept[(3600.0, 5400.0)][0] == now + 300
        other = EvalContext(incident_store, now + 300, findings=kept).findings(3600.0, 3600.0)
        assert other is not later  # another baseline is another run of the checks

    def test_background_checks_never_hold_up_the_tick(self, incident_store) -> None:
        """Under a runner (background_checks) a tick serves aged findings and lists their pair;
        refresh_checks renews them outside the tick, and the next tick acts on the new ones."""
        now = [T0 + 150 * MIN]
        rule = _rule("spikes", checks=["latency_spike"], filters={"model": "gpt-4o"})
        engine = AlertEngine(incident_store, RuleSet(), rules=[rule], clock=lambda: now[0])
        engine.background_checks = True
        assert engine.tick().fired == 1  # a pair never run is run in the tick
        assert not engine.checks_due
        now[0] = T0 + 240 * MIN  # quiet again, but the tick still sees the aged findings
        assert engine.tick().resolved == 0
        assert engine.checks_due
        assert engine.refresh_checks() == 1 and not engine.checks_due
        assert engine.tick().resolved == 1

    def test_runner_refreshes_checks_in_its_own_thread(self, incident_store) -> None:
        """AlertRunner starts a checks thread: an aged pair is renewed without a tick waiting."""

        from llmpulse.alerting import AlertRunner

        now = [T0 + 150 * MIN]
        rule = _rule("spikes", checks=["latency_spike"], filters={"model": "gpt-4o"})
        engine = AlertEngine(incident_store, RuleSet(), rules=[rule], clock=lambda: now[0])
        runner = AlertRunner(engine, None, interval_seconds=3600)
        renewed = signal_refreshes(engine)
        runner.start()  # its first tick runs the pair (never run before)
        try:
            wait_for_first_report(runner, 60)
            assert runner.last_report is not None and runner.last_report.fired == 1
            now[0] = T0 + 240 * MIN
            runner.tick_once()  # aged: served, and the checks thread is woken
            assert renewed.wait(60)
        finally:
            runner.stop()
        assert (T0 + 240 * MIN) in {at for at, _ in engine._findings.values()}
