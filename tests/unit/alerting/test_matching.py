"""Alertmanager's matching rules, as pure functions: silence matchers and inhibition."""

from __future__ import annotations

from llmpulse.alerting._rules import DEFAULT_INHIBIT, InhibitRule
from llmpulse.alerting._silences import Inhibitor, Matcher


class TestMatchers:
    def test_regex_is_anchored_at_both_ends(self) -> None:
        """=~ matches the whole value (RE2/Alertmanager): `gpt-4` does not match `gpt-4o`."""
        assert Matcher("model", "=~", "gpt-4.*").matches({"model": "gpt-4o"})
        assert not Matcher("model", "=~", "gpt-4").matches({"model": "gpt-4o"})
        assert not Matcher("model", "=~", "4o").matches({"model": "gpt-4o"})
        assert Matcher("model", "!~", "4o").matches({"model": "gpt-4o"})

    def test_missing_label_is_the_empty_string(self) -> None:
        """A label an alert lacks compares as ""."""
        assert Matcher("team", "=", "").matches({"model": "a"})
        assert not Matcher("team", "!=", "").matches({"model": "a"})
        assert Matcher("team", "=~", "ml|").matches({})


class TestInhibition:
    def test_equal_labels_and_missing_ones(self) -> None:
        """The target is muted when the `equal` labels agree; a missing label equals an empty
        one, so a rule whose `equal` labels are absent on both sides applies."""
        rule = InhibitRule({"alertname": "down"}, {"alertname": "slow"}, ("cluster",))
        down = {"alertname": "down", "cluster": "eu", "severity": "critical"}
        muted = Inhibitor([down], [rule])
        assert muted({"alertname": "slow", "cluster": "eu", "severity": "warning"})
        assert not muted({"alertname": "slow", "cluster": "us", "severity": "warning"})
        assert not muted({"alertname": "slow", "severity": "warning"})  # "" != "eu"
        bare = Inhibitor([{"alertname": "down"}], [rule])
        assert bare({"alertname": "slow", "model": "x"})  # cluster absent on both sides

    def test_an_alert_does_not_inhibit_itself(self) -> None:
        """An alert matching both source and target is not muted by itself, only by another."""
        rule = InhibitRule({"team": "ml"}, {"team": "ml"}, ("model",))
        a = {"alertname": "x", "team": "ml", "model": "m"}
        assert not Inhibitor([a], [rule])(a)
        b = {"alertname": "y", "team": "ml", "model": "m"}
        assert Inhibitor([a, b], [rule])(a)

    def test_default_rule_mutes_the_warning_of_the_same_labels(self) -> None:
        """critical mutes the warning with the same labels (all but severity), nothing else."""
        crit = {"alertname": "lat", "model": "a", "severity": "critical"}
        muted = Inhibitor([crit], [DEFAULT_INHIBIT])
        assert muted({"alertname": "lat", "model": "a", "severity": "warning"})
        assert not muted({"alertname": "lat", "model": "b", "severity": "warning"})
        assert not muted(crit)
