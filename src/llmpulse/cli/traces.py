"""``llmpulse traces``: list recent traces, and show one as a tree of its spans."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, Optional

import typer

from llmpulse.cli._options import ApiKey, DatabaseUrl, ServerUrl

__all__ = ["register"]

traces_app = typer.Typer(
    name="traces",
    help="List recorded traces, or show one as a tree of its spans.",
    no_args_is_help=True,
)

_Text = Optional[str]  # noqa: UP045 - typer reads annotations at runtime (Python 3.10 too)


@traces_app.command("list")
def list_traces(
    window: str = typer.Option(
        "24h", "--window", "-w", help="Traces with a span in the last WINDOW: 30m, 6h, 7d."
    ),
    model: Annotated[_Text, typer.Option("--model", help="Only traces with a call to this model.")] = None,
    status: Annotated[_Text, typer.Option("--status", help="Only traces with a span of this status (ok, error).")] = None,
    name: Annotated[_Text, typer.Option("--name", help="Only traces with a span of this name.")] = None,
    session: Annotated[_Text, typer.Option("--session", help="Only traces of this session id.")] = None,
    user: Annotated[_Text, typer.Option("--user", help="Only traces of this user id.")] = None,
    service: Annotated[_Text, typer.Option("--service", help="Only traces of this service.")] = None,
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=10_000, help="Show at most this many (newest first)."),
    until: Annotated[_Text, typer.Option("--until", help="End of the window (ISO time, UTC if no zone, or Unix seconds). Default: now.")] = None,
    database_url: DatabaseUrl = None,
    server_url: ServerUrl = None,
    api_key: ApiKey = None,
    as_json: bool = typer.Option(False, "--json", help="Print the traces as JSON lines."),
) -> None:  # fmt: skip
    """List the newest traces with their spans, errors, latency, tokens and cost.

    A filter keeps a trace when any of its spans matches it; the totals cover every span of the
    trace. Example, the failed traces of the last hour:

        llmpulse traces list --window 1h --status error
    """
    from llmpulse.cli._options import parse_until, parse_window, run_or_exit, span_filters
    from llmpulse.cli._source import open_source

    filters = span_filters(
        model=model, status=status, name=name, session_id=session, user_id=user, service=service
    )

    def work() -> tuple[str, list[Any]]:
        seconds = parse_window("--window", window)
        end = parse_until(until)
        source = open_source(database_url, server_url, api_key, "llmpulse traces list")
        try:
            return source.label, source.list_traces(end - seconds, end, limit, filters)
        finally:
            source.close()

    url, traces = run_or_exit(work)
    if as_json:
        from dataclasses import asdict

        for t in traces:
            sys.stdout.write(json.dumps({**asdict(t), "latency_ms": t.latency_ms}) + "\n")
        return
    _print_list(traces, url, window, filters)


def _print_list(traces: list[Any], url: str, window: str, filters: dict[str, str]) -> None:
    from rich.markup import escape
    from rich.table import Table
    from rich.text import Text

    from llmpulse.cli._options import iso

    console = _console()
    where = "".join(f", {k}={v}" for k, v in filters.items())
    console.print(f"[bold]llmpulse traces[/] {escape(url)}: last {escape(window + where)}",
                  soft_wrap=True)  # fmt: skip
    if not traces:
        console.print("[dim]No traces match. Try a longer --window or fewer filters.[/]")
        return
    table = Table(header_style="bold")
    table.add_column("trace id", no_wrap=True)
    table.add_column("started (UTC)", no_wrap=True)
    table.add_column("name")
    for col in ("spans", "errors", "ms", "in tok", "out tok", "cost"):
        table.add_column(col, justify="right")
    for t in traces:
        table.add_row(
            escape(t.trace_id),
            iso(t.start_time).replace("T", " ").rstrip("Z"),
            escape(t.name or "-"),
            f"{t.spans:,}",
            Text(f"{t.errors}", style="red" if t.errors else ""),
            f"{t.latency_ms:,.0f}",
            f"{t.input_tokens:,}",
            f"{t.output_tokens:,}",
            _cost(t.cost_usd),
        )
    console.print(table)
    console.print(
        f"[dim]{len(traces)} trace(s), newest first. Open one: llmpulse traces show ID[/]"
    )


@traces_app.command("show")
def show(
    trace_id: str = typer.Argument(..., help="The trace id (from `llmpulse traces list`)."),
    content: bool = typer.Option(
        False, "--content", help="Also show each span's recorded input and output (shortened)."
    ),
    database_url: DatabaseUrl = None,
    server_url: ServerUrl = None,
    api_key: ApiKey = None,
    as_json: bool = typer.Option(False, "--json", help="Print the spans as JSON lines."),
) -> None:
    """Show one trace as a tree: each span with its kind, status, latency, model, tokens, cost.

    Example:

        llmpulse traces show 4bf92f3577b34da6a3ce929d0e0e4736
    """
    from llmpulse.cli._options import fail, run_or_exit
    from llmpulse.cli._source import open_source

    def work() -> tuple[str, list[Any]]:
        source = open_source(database_url, server_url, api_key, "llmpulse traces show")
        try:
            return source.label, source.get_trace(trace_id.strip())
        finally:
            source.close()

    url, spans = run_or_exit(work)
    if not spans:
        raise fail(f"no trace {trace_id!r} in {url}: list recent ones with `llmpulse traces list`")
    if as_json:
        from llmpulse.cli.export import span_dict

        for span in spans:
            sys.stdout.write(json.dumps(span_dict(span)) + "\n")
        return
    _console().print(trace_tree(spans, content=content))


def trace_tree(spans: list[Any], *, content: bool = False) -> Any:
    """The spans of one trace as a rich ``Tree`` (children under parents, in start order).

    A span whose parent is not stored (dropped, sampled out, still in flight) hangs under the
    root marked as an orphan, so nothing recorded is hidden.
    """
    from rich.markup import escape
    from rich.tree import Tree

    from llmpulse.cli._options import iso

    ids = {s.span_id for s in spans}
    children: dict[str | None, list[Any]] = {}
    for s in spans:
        parent = s.parent_id if s.parent_id in ids else None
        children.setdefault(parent, []).append(s)
    start = min(s.start_time for s in spans)
    end = max(s.end_time for s in spans)
    errors = sum(1 for s in spans if s.status == "error")
    costs = [s.cost_usd for s in spans if s.cost_usd is not None]
    head = (
        f"[bold]trace {spans[0].trace_id}[/] · {iso(start)} · {len(spans)} span(s) · "
        f"{(end - start) * 1000:,.0f} ms · "
        f"{sum(s.input_tokens or 0 for s in spans):,}→{sum(s.output_tokens or 0 for s in spans):,} tok · "
        f"{_cost(sum(costs) if costs else None)}"
        + (f" · [red]{errors} error(s)[/]" if errors else "")
    )
    tree = Tree(head)

    def add(node: Any, span: Any, depth: int) -> None:
        orphan = span.parent_id is not None and span.parent_id not in ids
        branch = node.add(_label(span, orphan))
        if content:
            for what in ("input", "output"):
                text = getattr(span, what)
                if text:
                    branch.add(f"[dim]{what}: {escape(_short(text, 160))}[/]")
        if depth < 200:  # a cycle cannot be stored, but a deep chain must not recurse forever
            for child in children.get(span.span_id, ()):
                add(branch, child, depth + 1)

    for root in children.get(None, ()):
        add(tree, root, 0)
    return tree


def _label(span: Any, orphan: bool) -> str:
    from rich.markup import escape

    from llmpulse.schema import BRANCH_ATTRIBUTE, USAGE_ESTIMATED_ATTRIBUTE

    parts = [f"[bold]{escape(span.name)}[/] [dim]{escape(span.kind)}[/]"]
    parts.append("[red]error[/]" if span.status == "error" else "ok")
    parts.append(f"{span.latency_ms:,.0f} ms")
    if span.model:
        parts.append(escape(span.model))
    if span.input_tokens is not None or span.output_tokens is not None:
        estimated = " (estimated)" if span.attributes.get(USAGE_ESTIMATED_ATTRIBUTE) else ""
        parts.append(f"{span.input_tokens or 0:,}→{span.output_tokens or 0:,} tok{estimated}")
    if span.cost_usd is not None:
        parts.append(_cost(span.cost_usd))
    if span.ttft_ms is not None:
        parts.append(f"ttft {span.ttft_ms:,.0f} ms")
    branch = span.attributes.get(BRANCH_ATTRIBUTE)
    if branch is not None:
        parts.append(f"→ {escape(str(branch))}")
    label = " · ".join(parts)
    if span.status == "error" and (span.error_type or span.error_message):
        what = ": ".join(x for x in (span.error_type, span.error_message) if x)
        label += f"\n[red]{escape(_short(what, 200))}[/]"
    if orphan:
        label += f" [yellow](parent {escape(span.parent_id)} not stored)[/]"
    return label


def _short(text: str, n: int) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= n else flat[: n - 1] + "…"


def _cost(value: float | None) -> str:
    if value is None:
        return "-"
    return f"${value:,.4f}" if value >= 0.01 or value == 0 else f"${value:.6f}"


def _console() -> Any:
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=160)


def register(app: typer.Typer) -> None:
    """Add the ``traces`` command group to the app."""
    app.add_typer(traces_app, name="traces")
