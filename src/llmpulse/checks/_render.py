"""Findings and the run summary as rich tables (the CLI and the demo print these)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from rich.table import Table
from rich.text import Text

from llmpulse.checks._duration import format_duration
from llmpulse.checks._findings import Finding
from llmpulse.checks._measures import fmt_value, subject_label

__all__ = ["findings_table", "runs_table"]

_STYLE = {"critical": "bold red", "warning": "yellow"}


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


def _window(f: Finding, with_date: bool) -> str:
    a, b = _utc(f.window_start), _utc(f.window_end)
    fmt = "%m-%d %H:%M" if with_date else "%H:%M"
    end = b.strftime("%H:%M") if a.date() == b.date() else b.strftime("%m-%d %H:%M")
    return f"{a.strftime(fmt)}–{end}"


def _subject(subject: dict[str, Any]) -> str:
    return subject_label(subject)


def _levels(f: Finding) -> str:
    unit = f.details.get("unit", "")
    return f"{fmt_value(f.baseline, unit)} → {fmt_value(f.current, unit)}"


def _change(f: Finding) -> str:
    if f.details.get("unit") == "rate" and f.baseline is not None and f.current is not None:
        return f"{(f.current - f.baseline) * 100:+.1f} pts"
    return "new" if f.change_pct is None else f"{f.change_pct:+.0f}%"


def _evidence(f: Finding) -> str:
    parts = []
    if f.score is not None:
        parts.append(f"z {f.score:.1f}")
    if f.p_value is not None:
        parts.append(f"p {f.p_value:.1g}")
    elif f.confidence is not None:
        parts.append(f"conf {f.confidence:.3f}")
    d = f.details
    if "flagged_buckets" in d:
        parts.append(
            f"{d['flagged_buckets']}/{d['buckets']}×{format_duration(d['bucket_seconds'])}"
        )
    elif "current_runs" in d:
        parts.append(f"{d['current_runs']} vs {d['baseline_runs']} runs")
    elif "runs" in d:
        parts.append(f"{d['runs']} runs")
    if f.method == "rule":
        parts.append("rule")
    return " · ".join(parts)


def findings_table(
    findings: Sequence[Finding],
    *,
    title: str = "Findings",
    mark: Callable[[Finding], Text | str] | None = None,
    mark_header: str = "",
    compact: bool = False,
) -> Table:
    """One row per finding: severity, check, subject, metric, baseline → current, change, window, evidence.

    ``compact`` fits 80 columns: the severity colours the check's name, and the metric, change
    and evidence columns are left out (the check names the metric; before → now shows the change). ``mark(finding)`` adds a last
    column (the demo uses it to say whether a finding lies inside the incident it injected).
    """
    table = Table(title=title, title_justify="left", header_style="bold")
    if not compact:
        table.add_column("severity", no_wrap=True)
    table.add_column("check", no_wrap=compact)
    table.add_column("subject", min_width=14 if compact else None)
    if not compact:
        table.add_column("metric")
    table.add_column("before → now" if compact else "baseline → current", justify="right")
    if not compact:  # compact: "before → now" already says how big the change is
        table.add_column("change", justify="right", no_wrap=True)
    table.add_column("window (UTC)", no_wrap=compact)
    if not compact:
        table.add_column("evidence")
    if mark is not None:
        table.add_column(mark_header, no_wrap=True)
    days = {_utc(f.window_start).date() for f in findings} | {
        _utc(f.window_end).date() for f in findings
    }
    for f in findings:
        style = _STYLE.get(f.severity, "")
        cells: list[Any] = (
            [Text(f.check, style=style), _subject(f.subject)]
            if compact
            else [Text(f.severity, style=style), f.check, _subject(f.subject), f.metric]
        )
        cells += [_levels(f)] if compact else [_levels(f), _change(f)]
        cells.append(_window(f, len(days) > 1))
        if not compact:
            cells.append(_evidence(f))
        if mark is not None:
            cells.append(mark(f))
        table.add_row(*cells)
    return table


def runs_table(
    summary: Sequence[dict[str, Any]], *, title: str = "Runs: latest against baseline, per model"
) -> Table:
    """The run checks' summary across models: one row per (group, model, metric)."""
    table = Table(title=title, title_justify="left", header_style="bold")
    for col in (
        "group",
        "model",
        "metric",
        "runs",
        "baseline → current",
        "change",
        "trend/day",
        "status",
    ):
        table.add_column(col, justify="right" if col in ("runs", "change", "trend/day") else "left")
    for row in summary:
        status = str(row.get("status", "-"))
        levels = (
            f"{row['baseline']:.4g} → {row['current']:.4g}"
            if row.get("baseline") is not None
            else "-"
        )
        change = row.get("change_pct")
        trend = row.get("trend_pct_per_day")
        table.add_row(
            str(row.get("group")),
            str(row.get("model") or "-"),
            str(row.get("metric")),
            str(row.get("runs")),
            levels,
            "-" if change is None else f"{change:+.1f}%",
            "-"
            if trend is None
            else f"{trend:+.2f}%" + ("" if row.get("trend") == "flat" else f" ({row['trend']})"),
            Text(status, style=_STYLE.get(status, "green" if status == "ok" else "dim")),
        )
    return table
