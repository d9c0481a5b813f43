"""The demo's closing report, read back from the store like any user's query would.

Tables per model and per step (calls, errors, p50/p95 latency, tokens, cost), a timeline in
which the incident window stands out, and what recovery did. Every number comes from the
store's rollup queries, not from the demo's own bookkeeping.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from llmpulse.checks import StoreReader
from llmpulse.demo.pipeline import ROUTE_DECISION
from llmpulse.demo.runner import DemoResult
from llmpulse.recovery._observe import counter_increase

__all__ = ["render_report"]

_TIMELINE_STEP_S = 600


def render_report(store: StoreReader, result: DemoResult) -> Group:
    """Everything the demo prints after the run, as one rich renderable."""
    parts: list[Any] = [
        _stats_table(store, result, "Per model (LLM calls)", ("model",), tokens=True, kind="llm"),
        _stats_table(
            store, result, "Per pipeline step", ("name",), tokens=False, kind=["chain", "retriever"]
        ),
        _timeline(store, result),
        _routing(store, result),
    ]
    recovery = _recovery(store, result)
    if recovery is not None:
        parts.append(recovery)
    return Group(*parts)


def _fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _fmt_cost(value: float | None) -> str:
    return "unknown" if value is None else f"${value:,.4f}"


def _stats_table(
    store: StoreReader,
    result: DemoResult,
    title: str,
    group_by: tuple[str, ...],
    *,
    tokens: bool,
    **filters: Any,
) -> Table:
    rows = store.span_stats(result.start, result.end + 3600, group_by=group_by, **filters)
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column(group_by[0], no_wrap=True)
    columns = ("calls", "errors", "p50 ms", "p95 ms") + (
        ("in tok", "out tok", "cost") if tokens else ()
    )
    for col in columns:
        table.add_column(col, justify="right")
    for r in sorted(rows, key=lambda r: -r.calls):
        err = Text(f"{r.errors} ({r.error_rate:.1%})", style="red" if r.errors else "")
        cells: list[str | Text] = [
            str(r.group.get(group_by[0]) or "-"),
            f"{r.calls:,}",
            err,
            _fmt_ms(r.p50_latency_ms),
            _fmt_ms(r.p95_latency_ms),
        ]
        if tokens:
            cells += [f"{r.input_tokens:,}", f"{r.output_tokens:,}", _fmt_cost(r.cost_usd)]
        table.add_row(*cells)
    return table


def _timeline(store: StoreReader, result: DemoResult) -> Table:
    model = result.settings.incident.model
    series = store.span_series(result.start, result.end, _TIMELINE_STEP_S, kind="llm", model=model)
    table = Table(
        title=f"Timeline of {model} (10-minute buckets, simulated clock); the incident window is red",
        title_justify="left",
        header_style="bold",
    )
    for col, justify in (
        ("time (UTC)", "left"),
        ("calls", "right"),
        ("errors", "right"),
        ("p95 ms", "right"),
        ("out tok/call", "right"),
        ("cost", "right"),
        ("", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in sorted(series, key=lambda r: r.bucket_start or 0):
        t0 = float(r.bucket_start or 0)
        inside = t0 + _TIMELINE_STEP_S > result.incident_start and t0 < result.incident_end
        style = "bold red" if inside else ""
        table.add_row(
            datetime.fromtimestamp(t0, timezone.utc).strftime("%H:%M"),
            f"{r.calls}",
            f"{r.errors}",
            _fmt_ms(r.p95_latency_ms),
            f"{r.output_tokens / max(r.calls, 1):,.0f}",
            _fmt_cost(r.cost_usd),
            "◀ incident" if inside else "",
            style=style,
        )
    return table


def _routing(store: StoreReader, result: DemoResult) -> Table:
    inside = store.branch_counts(result.incident_start, result.incident_end, name=ROUTE_DECISION)
    before = store.branch_counts(result.start, result.incident_start, name=ROUTE_DECISION)
    table = Table(
        title="Routing decisions (branch spans)", title_justify="left", header_style="bold"
    )
    for col in ("branch", "before incident", "during incident"):
        table.add_column(col, justify="left" if col == "branch" else "right")
    totals = (sum(c.count for c in before) or 1, sum(c.count for c in inside) or 1)
    branches = {c.branch for c in before} | {c.branch for c in inside}
    # A branch span without a branch value (None) sorts last instead of failing the comparison.
    for branch in sorted(branches, key=lambda b: (b is None, b or "")):
        b = sum(c.count for c in before if c.branch == branch)
        i = sum(c.count for c in inside if c.branch == branch)
        table.add_row(branch or "-", f"{b} ({b / totals[0]:.0%})", f"{i} ({i / totals[1]:.0%})")
    return table


def _recovery(store: StoreReader, result: DemoResult) -> Table | None:
    window = (result.start, result.end + 3600)
    # Counters only (cumulative per series, Prometheus style): the total is each series'
    # increase over the window, summed over processes. Gauges are not summed.
    names = [
        n
        for n in store.metric_names(*window)
        if n.startswith("llmpulse_recovery_") and n.endswith("_total")
    ]
    if not names:
        return None
    table = Table(
        title="Recovery on the answer step (what healing cost)",
        title_justify="left",
        header_style="bold",
    )
    for col in ("what", "labels", "total"):
        table.add_column(col, justify="right" if col == "total" else "left", no_wrap=col == "what")
    for name in sorted(names):
        series: dict[tuple[tuple[str, str], ...], list[Any]] = {}
        for p in store.metric_series(name, *window):
            series.setdefault(tuple(sorted(p.labels.items())), []).append(p)
        by_labels: dict[str, float] = {}
        for labels, points in series.items():
            key = ", ".join(
                f"{k}={v}"
                for k, v in labels
                if k != "instance" and (k != "reason" or "backoff" in name)
            )
            by_labels[key] = by_labels.get(key, 0.0) + counter_increase(points)
        short = name.removeprefix("llmpulse_recovery_").removesuffix("_total").replace("_", " ")
        for key, total in sorted(by_labels.items()):
            table.add_row(short, key, f"{total:,.2f}" if "seconds" in name else f"{total:,.0f}")
    return table
