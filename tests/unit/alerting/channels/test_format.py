"""The evidence as text, shared by every channel."""

from __future__ import annotations

import pytest

from llmpulse.alerting.channels import Notification
from llmpulse.alerting.channels._format import facts, iso, number, plain_text, title
from tests.unit.alerting.channels.conftest import make_item, make_notification


class TestFormat:
    @pytest.mark.parametrize(
        ("value", "text"),
        [(6.1, "6.1"), (5.0, "5"), (1.25, "1.25"), (0.00012, "0.00012"), (0.123456, "0.1235"),
         (1234.5, "1,234.5"), (1e7, "10,000,000"), (-2.5, "-2.5"), (float("nan"), "nan")],
    )  # fmt: skip
    def test_number(self, value: float, text: str) -> None:
        """Values read naturally: no float noise, thousands separated, small values kept."""
        assert number(value) == text

    def test_iso_is_utc_with_z(self) -> None:
        """Times are RFC 3339 UTC with Z; fractions only when present."""
        assert iso(0) == "1970-01-01T00:00:00Z"
        assert iso(1.5) == "1970-01-01T00:00:01.500Z"

    def test_title_counts_firing_and_names_the_worst_severity(self) -> None:
        """[FIRING:n] counts firing items; severity is the highest; escalation is named."""
        items = (make_item(0), make_item(1, severity="warning", rule="errors"),
                 make_item(2, status="resolved"))  # fmt: skip
        n = Notification("k", "g", "firing", items, escalation_level=2)
        assert title(n) == "[FIRING:2] errors, high_latency (critical) escalation 2"
        assert title(make_notification(3, status="resolved")).startswith("[RESOLVED:3]")

    def test_facts_and_text_hold_all_evidence(self) -> None:
        """Value, threshold, baseline, window, start, labels, extra evidence and link."""
        item = make_item(0)
        names = [name for name, _ in facts(item)]
        assert names == ["Value", "Threshold", "Baseline", "Window", "Started", "Labels", "calls"]
        text = plain_text(make_notification())
        assert "Labels: env=prod, model=gpt-4o-0" in text and "calls: 1200" in text
        assert "Link: http://dash.example/traces?model=gpt-4o-0" in text
        assert "Notification id: nk-1" in text

    def test_absent_evidence_is_left_out(self) -> None:
        """An alert without value/threshold/baseline/window lists only what it has."""
        item = make_item(0, value=None, threshold=None, baseline=None, window_s=None,
                         labels={}, evidence={})  # fmt: skip
        assert [name for name, _ in facts(item)] == ["Started"]
