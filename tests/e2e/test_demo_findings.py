"""The demo ends by running the checks: the incident it injected is found, and nothing else."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from rich.console import Console

from llmpulse.checks import CheckReport
from llmpulse.demo.findings import demo_checks, inside_incident, render_findings
from llmpulse.demo.runner import DemoResult
from llmpulse.store import Store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(full_demo: DemoResult) -> Iterator[tuple[DemoResult, Store, CheckReport]]:
    """The session's full demo run (tests/e2e/conftest.py) and the checks over what it stored."""
    store = Store.open(full_demo.settings.database_url)
    try:
        yield full_demo, store, demo_checks(store, full_demo)
    finally:
        store.close()


class TestDemoFindings:
    def test_the_incident_is_found_on_the_degraded_model(
        self, demo: tuple[DemoResult, Store, CheckReport]
    ) -> None:
        """Latency, error-rate and token findings on gpt-4o, each overlapping the injected window."""
        result, _, report = demo
        on_model = {
            f.check
            for f in report.findings
            if f.subject.get("model") == "gpt-4o" and inside_incident(f, result)
        }
        assert {"latency_spike", "error_rate_jump", "token_spike"} <= on_model

    def test_nothing_outside_the_incident_is_flagged(
        self, demo: tuple[DemoResult, Store, CheckReport]
    ) -> None:
        """Every finding overlaps the incident window, give or take one bucket."""
        result, _, report = demo
        assert report.findings and all(inside_incident(f, result) for f in report.findings), [
            f.message for f in report.findings if not inside_incident(f, result)
        ]

    def test_findings_carry_their_evidence(
        self, demo: tuple[DemoResult, Store, CheckReport]
    ) -> None:
        """Each finding has a baseline, a current level, a change and a bounded window."""
        result, _, report = demo
        for f in report.findings:
            assert f.baseline is not None and f.current is not None and f.current > f.baseline
            assert result.start <= f.window_start < f.window_end <= result.end
        errors = next(f for f in report.findings if f.check == "error_rate_jump")
        assert errors.baseline == 0.0 and errors.current > 0.2 and errors.p_value < 1e-10  # type: ignore[operator]

    def test_render_marks_every_finding_inside(
        self, demo: tuple[DemoResult, Store, CheckReport]
    ) -> None:
        """The demo's closing table marks each finding inside the incident and says nothing else was flagged."""
        result, store, _ = demo
        console = Console(width=200, record=True)
        console.print(render_findings(store, result))
        text = console.export_text()
        assert "inside" in text and "OUTSIDE" not in text
        assert "was found: " in text and "Nothing flagged outside it" in text
