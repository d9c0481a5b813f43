"""Checks: detection run over the store — live traffic spikes and jumps, run regressions, trends.

One floor above ``llmpulse.detection`` (pure functions) and beside alerting: the checks ask the
store for per-bucket series and runs, run the detectors, and return ``Finding`` records with
their evidence. ``llmpulse check`` is the command-line face of ``run_checks``::

    from llmpulse.checks import run_checks
    from llmpulse.store import Store

    store = Store.open("sqlite:///./llmpulse.db")
    report = run_checks(store, start=now - 86400, end=now)
    for finding in report.findings:
        print(finding.severity, finding.message)

See docs/checks.md.
"""

from __future__ import annotations

try:
    import scipy  # noqa: F401 - only the detection extra installs it
except ModuleNotFoundError as exc:  # a base install: say which extra brings it, not just "scipy"
    raise ModuleNotFoundError(
        "llmpulse.checks needs scipy, which is not installed: pip install 'llmpulse[detection]'",
        name=exc.name,
    ) from exc

from llmpulse.checks._config import (
    CheckConfig,
    LiveConfig,
    MetricRule,
    RateRule,
    RunsConfig,
    SpikeRule,
)
from llmpulse.checks._duration import format_duration, parse_duration
from llmpulse.checks._findings import (
    CHECK_NAMES,
    SEVERITIES,
    CheckReport,
    Finding,
    severity_at_least,
)
from llmpulse.checks._live import LiveResult
from llmpulse.checks._reader import StoreReader
from llmpulse.checks._render import findings_table, runs_table
from llmpulse.checks._run import DEFAULT_BASELINE_SECONDS, check_runs, check_traffic, run_checks
from llmpulse.checks._runs import RunsResult

__all__ = [
    "CHECK_NAMES",
    "DEFAULT_BASELINE_SECONDS",
    "SEVERITIES",
    "CheckConfig",
    "CheckReport",
    "Finding",
    "LiveConfig",
    "LiveResult",
    "MetricRule",
    "RateRule",
    "RunsConfig",
    "RunsResult",
    "SpikeRule",
    "StoreReader",
    "check_runs",
    "check_traffic",
    "findings_table",
    "format_duration",
    "parse_duration",
    "run_checks",
    "runs_table",
    "severity_at_least",
]
