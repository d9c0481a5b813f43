"""``llmpulse stats``: calls, errors, latency, tokens and cost per model, prompt, step or service."""

from __future__ import annotations

import enum
import json
import sys
from typing import Annotated, Any, Optional

import typer

from llmpulse.cli._options import ApiKey, DatabaseUrl, ServerUrl

__all__ = ["register"]


class By(str, enum.Enum):
    """What one row of the table stands for."""

    model = "model"
    prompt = "prompt"
    name = "name"
    service = "service"


# --by -> (store group key, kind filter by default, title)
_GROUPS = {
    By.model: ("model", "llm", "Per model (LLM calls)"),
    By.prompt: ("prompt_version", "llm", "Per prompt version (LLM calls)"),
    By.name: ("name", None, "Per step (span name, every kind)"),
    By.service: ("service", None, "Per service"),
}


def stats(
    window: str = typer.Option(
        "24h", "--window", "-w", help="Cover the last WINDOW before --until: 30m, 6h, 7d."
    ),
    by: Annotated[By, typer.Option("--by", help="One row per model, prompt, name or service.")] = (
        By.model
    ),
    kind: Annotated[
        Optional[str],  # noqa: UP045 - typer reads the annotation at runtime (Python 3.10 too)
        typer.Option(
            "--kind",
            help="Only spans of this kind (llm, chain, tool, retriever, ...). Default: llm for "
            "--by model/prompt, every kind otherwise; `all` for every kind.",
        ),
    ] = None,
    until: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--until",
            help="End of the window (ISO time, UTC if no zone, or Unix seconds). Default: now.",
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    server_url: ServerUrl = None,
    api_key: ApiKey = None,
    as_json: bool = typer.Option(False, "--json", help="Print the rows as one JSON object."),
) -> None:
    """Show calls, errors, latency, tokens and cost per model, prompt version, step or service.

    Reads the per-minute rollups (percentiles within 2.44 %), so it stays fast at millions of
    spans; `--by service` sums raw spans instead (no percentiles). From a database, or from a
    server with --server-url. Example:

        llmpulse stats --window 6h --by name
    """
    from llmpulse.cli._options import parse_until, parse_window, run_or_exit, span_filters
    from llmpulse.cli._source import open_source

    key, default_kind, title = _GROUPS[by]
    wanted_kind = default_kind if kind is None else (None if kind == "all" else kind)
    filters = span_filters(kind=wanted_kind)

    def work() -> tuple[dict[str, str], str, float, float, list[Any]]:
        seconds = parse_window("--window", window)
        end = parse_until(until)
        start = end - seconds
        source = open_source(database_url, server_url, api_key, "llmpulse stats")
        try:
            if by is By.service:
                rows = source.raw_span_stats(start, end, (key,), filters)
            else:
                rows = source.span_stats(start, end, (key,), filters)
            return source.where, source.label, start, end, rows
        finally:
            source.close()

    where, url, start, end, rows = run_or_exit(work)
    rows.sort(key=lambda r: (-r.calls, str(r.group.get(key))))
    if as_json:
        out = {
            **where,
            "start": start,
            "end": end,
            "by": by.value,
            "kind": wanted_kind,
            "rows": [_row_dict(r, by.value, key) for r in rows],
        }
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return
    _print(rows, url, start, end, window, title, key, wanted_kind)


def _row_dict(row: Any, by: str, key: str) -> dict[str, Any]:
    from dataclasses import asdict

    values = asdict(row)
    del values["group"], values["bucket_start"]
    return {by: row.group.get(key), **values}


def _print(
    rows: list[Any],
    url: str,
    start: float,
    end: float,
    window: str,
    title: str,
    key: str,
    kind: str | None,
) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    from llmpulse.cli._options import iso

    console = Console()
    if not console.is_terminal:
        console = Console(width=140)
    console.print(
        f"[bold]llmpulse stats[/] {escape(url)}: last {escape(window)} ({iso(start)} → {iso(end)})"
        + (f", kind {escape(kind)}" if kind else ""),
        soft_wrap=True,  # one line whatever the URL's length: scripts and tests compare it
    )
    if not rows:
        console.print("[dim]No spans in this window. Try a longer --window, or --kind all.[/]")
        return
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column(key, no_wrap=True)
    for col in ("calls", "errors", "avg ms", "p50 ms", "p95 ms", "in tok", "out tok", "cost"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            escape(str(r.group.get(key) or "-")),
            f"{r.calls:,}",
            Text(f"{r.errors:,} ({r.error_rate:.1%})", style="red" if r.errors else ""),
            f"{r.latency_ms_avg:,.0f}",
            _ms(r.p50_latency_ms),
            _ms(r.p95_latency_ms),
            f"{r.input_tokens:,}",
            f"{r.output_tokens:,}",
            _cost(r.cost_usd, r.priced_calls if kind == "llm" else r.calls, r.calls),
        )
    calls = sum(r.calls for r in rows)
    errors = sum(r.errors for r in rows)
    priced = [r.cost_usd for r in rows if r.cost_usd is not None]
    table.add_section()
    table.add_row(
        "total",
        f"{calls:,}",
        f"{errors:,} ({errors / calls:.1%})",
        "",
        "",
        "",
        f"{sum(r.input_tokens for r in rows):,}",
        f"{sum(r.output_tokens for r in rows):,}",
        _cost(
            sum(priced) if priced else None,
            sum(r.priced_calls for r in rows) if kind == "llm" else calls,
            calls,
        ),
        style="bold",
    )
    console.print(table)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _cost(value: float | None, priced: int, calls: int) -> str:
    """The cost; for LLM calls, how many were priced when some model had no known price."""
    if value is None:
        return "unknown"
    text = f"${value:,.4f}" if value >= 0.01 or value == 0 else f"${value:.6f}"
    return text if priced == calls else f"{text} ({priced:,} priced)"


def register(app: typer.Typer) -> None:
    """Add ``stats`` to the app."""
    app.command("stats")(stats)
