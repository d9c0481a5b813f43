"""The entry points: live traffic checks, run checks, and both at once."""

from __future__ import annotations

from typing import Any

from llmpulse.checks._config import CheckConfig, LiveConfig
from llmpulse.checks._findings import CheckReport, Finding
from llmpulse.checks._live import LiveResult, statistical_findings
from llmpulse.checks._reader import StoreReader
from llmpulse.checks._rules import rule_findings
from llmpulse.checks._runs import RunsResult, check_runs
from llmpulse.checks._series import data_extent

__all__ = ["DEFAULT_BASELINE_SECONDS", "check_runs", "check_traffic", "run_checks"]

DEFAULT_BASELINE_SECONDS = 7 * 86400.0
_RANK = {"critical": 0, "warning": 1}


def _window(start: float, end: float, baseline_start: float | None) -> float:
    if not end > start:
        raise ValueError(f"the window must end after it starts, got start={start!r} end={end!r}")
    lo = start - DEFAULT_BASELINE_SECONDS if baseline_start is None else baseline_start
    if lo > start:
        raise ValueError(
            f"baseline_start ({lo!r}) must not be after the window's start ({start!r})"
        )
    return lo


def check_traffic(
    store: StoreReader,
    start: float,
    end: float,
    *,
    baseline_start: float | None = None,
    config: LiveConfig | None = None,
) -> LiveResult:
    """Latency, token, cost, error-rate and branch-rate checks of the spans in ``[start, end)``.

    Statistical mode (the default) runs the detectors over series reaching back to
    ``baseline_start`` (default: 7 days before ``start``) and reports incidents that reach into
    the window; rule mode compares ``[start, end)`` with ``[baseline_start, start)``.
    """
    cfg = config or LiveConfig()
    lo = _window(start, end, baseline_start)
    if cfg.method == "rule":
        return rule_findings(store, (lo, start), (start, end), cfg)
    extent = data_extent(store, lo, end)
    if extent is None:
        return LiveResult(skipped=["no spans in the window or its baseline"])
    return statistical_findings(store, extent[0], extent[1], (start, end), cfg)


def _order(f: Finding) -> tuple[Any, ...]:
    return (
        _RANK.get(f.severity, 2),
        f.window_start,
        f.check,
        str(sorted(f.subject.items(), key=str)),
        f.metric,
    )


def run_checks(
    store: StoreReader,
    *,
    start: float,
    end: float,
    baseline_start: float | None = None,
    config: CheckConfig | None = None,
) -> CheckReport:
    """Live traffic checks over ``[start, end)`` and run checks up to ``end``, in one report.

    No clock is read: pass ``end=time.time()`` to check "now". Findings come most severe first.
    """
    cfg = config or CheckConfig()
    live = check_traffic(store, start, end, baseline_start=baseline_start, config=cfg.live)
    runs: RunsResult = check_runs(store, now=end, config=cfg.runs)
    return CheckReport(
        start=start,
        end=end,
        findings=sorted([*live.findings, *runs.findings], key=_order),
        skipped=[*live.skipped, *runs.skipped],
        runs_summary=runs.summary,
        series_checked=live.series_checked + len(runs.summary),
    )
