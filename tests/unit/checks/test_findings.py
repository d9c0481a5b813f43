"""Findings and reports: JSON-ready, ordered by severity, and a verdict for --fail-on."""

from __future__ import annotations

import json
import math

from llmpulse.checks import CheckReport, Finding, severity_at_least


def _finding(severity: str = "warning", **kw: object) -> Finding:
    fields: dict[str, object] = {
        "check": "latency_spike",
        "severity": severity,
        "subject": {"model": "gpt-4o"},
        "metric": "p95_latency_ms",
        "window_start": 1_700_000_000.0,
        "window_end": 1_700_001_800.0,
        "baseline": 300.0,
        "current": 900.0,
        "change_pct": 200.0,
        "method": "statistical",
        "message": "p95 latency of gpt-4o rose 3.0x",
    }
    fields.update(kw)
    return Finding(**fields)  # type: ignore[arg-type]


class TestFinding:
    def test_to_dict_is_plain_json_with_iso_times(self) -> None:
        """A finding serialises with its window in Unix seconds and ISO-8601 UTC."""
        data = json.loads(json.dumps(_finding().to_dict()))
        assert data["window"] == {
            "start": 1_700_000_000.0,
            "end": 1_700_001_800.0,
            "start_iso": "2023-11-14T22:13:20Z",
            "end_iso": "2023-11-14T22:43:20Z",
        }
        assert data["subject"] == {"model": "gpt-4o"} and data["change_pct"] == 200.0

    def test_infinities_become_null(self) -> None:
        """JSON has no infinity: a change from zero that came out as inf is written as null."""
        data = _finding(change_pct=math.inf, details={"x": [math.nan]}).to_dict()
        assert data["change_pct"] is None and data["details"] == {"x": [None]}
        json.dumps(data, allow_nan=False)

    def test_overlap_allows_slack(self) -> None:
        """A finding ending 60 s before a window overlaps it with 60 s of slack, not without."""
        f = _finding()
        assert not f.overlaps(f.window_end + 60, f.window_end + 600)
        assert f.overlaps(f.window_end + 60, f.window_end + 600, slack=60)


class TestReport:
    def test_verdicts_follow_the_worst_severity(self) -> None:
        """One warning reaches --fail-on warning but not critical; never is never reached."""
        report = CheckReport(0.0, 1.0, [_finding("warning")])
        assert (
            report.reaches("warning")
            and not report.reaches("critical")
            and not report.reaches("never")
        )
        assert report.worst() == "warning" and report.counts() == {"warning": 1, "critical": 0}

    def test_an_empty_report_reaches_nothing(self) -> None:
        """No findings: no verdict at any level, worst is None."""
        report = CheckReport(0.0, 1.0, [])
        assert not report.reaches("warning") and report.worst() is None

    def test_report_dict_has_findings_summary_and_skipped(self) -> None:
        """The JSON report carries the findings, counts per severity and the skipped series."""
        report = CheckReport(
            0.0, 1.0, [_finding("critical")], skipped=["x: too few"], series_checked=7
        )
        data = json.loads(json.dumps(report.to_dict()))
        assert data["summary"]["critical"] == 1 and data["summary"]["worst"] == "critical"
        assert data["summary"]["series_checked"] == 7 and data["skipped"] == ["x: too few"]

    def test_severity_order(self) -> None:
        """critical is at least warning; warning is not at least critical."""
        assert severity_at_least("critical", "warning") and not severity_at_least(
            "warning", "critical"
        )
