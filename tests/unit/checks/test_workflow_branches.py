"""Branch shares per workflow feed ``llmpulse check``: a route whose share moved in one workflow
is one branch_shift finding naming that workflow and decision point, with its counts as
evidence; the same node name in another workflow, unchanged, stays quiet."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from llmpulse.checks import LiveConfig, check_traffic
from llmpulse.cli.main import app
from llmpulse.schema import BRANCH_ATTRIBUTE, Span
from llmpulse.store import Store
from tests.unit.checks.conftest import T0

MIN = 60.0
SHIFT = (T0 + 120 * MIN, T0 + 150 * MIN)  # support's refund share 20% -> 60%


def decisions() -> list[Span]:
    """Four hours, ten decisions a minute at "classify" in each of two workflows."""
    spans = []
    for m in range(240):
        t = T0 + m * MIN
        shifted = SHIFT[0] <= t < SHIFT[1]
        for workflow in ("support", "billing"):
            refunds = 6 if workflow == "support" and shifted else 2
            for i in range(10):
                way = "refund" if i < refunds else "answer"
                sid = f"{workflow}-{m}-{i}"
                spans.append(
                    Span(
                        sid, sid, f"{workflow}:classify", t + i, t + i, kind="branch",
                        attributes={BRANCH_ATTRIBUTE: way, "llmpulse.workflow": workflow},
                    )
                )  # fmt: skip
    return spans


@pytest.fixture
def url(sqlite_url: str) -> str:
    with Store.open(sqlite_url) as store:
        assert store.write(spans=decisions()).rejected == 0
    return sqlite_url


class TestBranchShiftPerWorkflow:
    def test_statistical_finding_names_the_workflow_with_counts(self, url: str) -> None:
        """One finding, for support only: the refund route's share 20% -> 60%, the workflow and
        decision point in its evidence, the counts those of the data."""
        with Store.open(url) as store:
            result = check_traffic(store, T0, T0 + 240 * MIN, baseline_start=T0)
        [f] = [f for f in result.findings if f.check == "branch_shift"]
        assert f.subject == {"name": "support:classify", "branch": "refund"}
        assert (f.details["workflow"], f.details["decision_point"]) == ("support", "classify")
        assert f.baseline == pytest.approx(0.2) and f.current == pytest.approx(0.6)
        assert f.details["baseline_hits"] / f.details["baseline_trials"] == pytest.approx(0.2)
        assert f.details["hits"] == pytest.approx(0.6 * f.details["trials"])
        minutes = (f.window_end - f.window_start) / MIN
        assert f.details["trials"] == pytest.approx(10 * minutes)
        assert f.window_start <= SHIFT[0] + 5 * MIN and f.window_end >= SHIFT[1] - 5 * MIN
        assert "'support:classify' went 'refund' more often" in f.message

    def test_rule_mode_too(self, url: str) -> None:
        """The rule method (last 30 minutes of the shift against the two hours before) reports
        the same route of the same workflow, with the workflow in its evidence."""
        with Store.open(url) as store:
            result = check_traffic(
                store, SHIFT[0], SHIFT[1], baseline_start=T0, config=LiveConfig(method="rule")
            )
        [f] = [f for f in result.findings if f.check == "branch_shift"]
        assert f.subject["name"] == "support:classify" and f.details["workflow"] == "support"
        # Rollups are per minute and T0 is not on one: each window covers the minutes it
        # overlaps. The shift's 31 = its 30 (6 of 10 each) and the one it ends in (2 of 10);
        # the baseline's 121 = 120 before (2 of 10) and the one the shift starts in (6 of 10).
        assert (f.details["hits"], f.details["trials"]) == (182, 310)
        assert (f.details["baseline_hits"], f.details["baseline_trials"]) == (246, 1210)

    def test_llmpulse_check_reports_it(self, url: str) -> None:
        """`llmpulse check --json` carries the finding and its evidence."""
        out = CliRunner().invoke(
            app,
            ["check", "--database-url", url, "--until", str(T0 + 240 * MIN), "--window", "4h",
             "--json"],
        )  # fmt: skip
        assert out.exit_code in (0, 1), out.output
        doc = json.loads(out.stdout)
        shifts = [f for f in doc["findings"] if f["check"] == "branch_shift"]
        assert [(f["subject"]["name"], f["details"]["workflow"]) for f in shifts] == [
            ("support:classify", "support")
        ]
