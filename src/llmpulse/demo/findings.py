"""The demo's last word: run ``llmpulse check`` over what it recorded and hold the findings up
against the incident it injected — found, with evidence, and nothing flagged outside it.
"""

from __future__ import annotations

from datetime import datetime, timezone

from rich.console import Group
from rich.text import Text

from llmpulse.checks import CheckReport, Finding, StoreReader, findings_table, run_checks
from llmpulse.demo.runner import DemoResult

__all__ = ["demo_checks", "inside_incident", "render_findings"]

_EXPECTED = ("latency_spike", "error_rate_jump", "token_spike")


def _latency_hint(workers: int) -> str:
    """Why a latency spike can go unseen here, and what to do about it.

    The simulated calls take tens of milliseconds and their latency is measured for real, so it
    includes each call's wait for a CPU: on a busy machine, with several workers, that wait can
    swamp the incident's x5 (measured in tests/e2e/test_demo_findings.py).
    """
    hint = (
        "\n  The simulated calls take tens of ms and their measured latency includes the wait "
        "for a CPU, which on a busy machine can hide the x5. Run it again "
    )
    if workers > 1:
        return hint + f"with --workers 1 (this run had {workers}), or when the machine is quieter."
    return hint + "when the machine is quieter."


def demo_checks(store: StoreReader, result: DemoResult) -> CheckReport:
    """The checks over the demo's whole (virtual) run, with no earlier baseline to draw on."""
    return run_checks(store, start=result.start, end=result.end, baseline_start=result.start)


def inside_incident(finding: Finding, result: DemoResult) -> bool:
    """Whether ``finding`` overlaps the injected incident (give or take one bucket)."""
    slack = float(finding.details.get("bucket_seconds", 0))
    return finding.overlaps(result.incident_start, result.incident_end, slack)


def _hhmm(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%H:%M")


def _verdict(report: CheckReport, result: DemoResult) -> Text:
    model = result.settings.incident.model
    if report.series_checked == 0:
        return Text(
            "Too little traffic for the checks to judge (a series needs 12 buckets with calls): "
            "run the demo with more tickets, e.g. -n 400.",
            style="yellow",
        )
    on_model = [
        f for f in report.findings if f.subject.get("model") == model and inside_incident(f, result)
    ]
    found = sorted({f.check for f in on_model})
    outside = [f for f in report.findings if not inside_incident(f, result)]
    window = f"{_hhmm(result.incident_start)}–{_hhmm(result.incident_end)} UTC"
    text = Text()
    if all(c in found for c in _EXPECTED):
        text.append("✓ ", style="bold green")
        text.append(f"The injected incident on {model} ({window}) was found: {', '.join(found)}.")
    else:
        missing = [c for c in _EXPECTED if c not in found]
        text.append("✗ ", style="bold red")
        text.append(
            f"The injected incident on {model} ({window}) was not fully found: missing {', '.join(missing)}."
        )
        if "latency_spike" in missing:
            text.append(_latency_hint(result.settings.workers))
    if outside:
        text.append(
            f"\n✗ {len(outside)} finding(s) outside the incident: false alarms.", style="bold red"
        )
    else:
        text.append(
            f"\n✓ Nothing flagged outside it ({report.series_checked} series checked).",
            style="green",
        )
    return text


def render_findings(store: StoreReader, result: DemoResult) -> Group:
    """The findings of ``llmpulse check`` on the demo's data, marked against the injected incident."""
    report = demo_checks(store, result)

    def mark(f: Finding) -> Text:
        if inside_incident(f, result):
            return Text("inside", style="green")
        return Text("OUTSIDE", style="bold red")

    table = findings_table(
        report.findings,
        title="What `llmpulse check` finds in this run (default settings)",
        mark=mark,
        mark_header="incident?",
        compact=True,
    )
    return Group(Text(), table, _verdict(report, result))
