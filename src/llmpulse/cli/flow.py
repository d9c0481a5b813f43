"""``llmpulse flow NAME``: a workflow's nodes and routes with their traffic, as Mermaid, SVG or
JSON."""

from __future__ import annotations

import enum
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from llmpulse.cli._options import ApiKey, DatabaseUrl, ServerUrl

__all__ = ["register"]


class Format(str, enum.Enum):
    """How the flow is written."""

    mermaid = "mermaid"
    svg = "svg"
    json = "json"


def flow(
    name: str = typer.Argument(..., help="The workflow (graph) name its branch decisions carry."),
    window: str = typer.Option(
        "24h", "--window", "-w", help="Cover the last WINDOW before --until: 30m, 6h, 7d."
    ),
    until: Annotated[
        Optional[str],  # noqa: UP045 - typer reads the annotation at runtime (Python 3.10 too)
        typer.Option("--until", help="End of the window (ISO time or Unix seconds). Default: now."),
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="mermaid, svg or json.")] = (
        Format.mermaid
    ),
    output: Annotated[
        Optional[Path],  # noqa: UP045 - typer reads the annotation at runtime (Python 3.10 too)
        typer.Option("--output", "-o", help="Write to this file instead of standard output."),
    ] = None,
    database_url: DatabaseUrl = None,
    server_url: ServerUrl = None,
    api_key: ApiKey = None,
) -> None:
    """Print a workflow's flow: nodes (calls, error rate, p95, cost) and routes (count, share).

    Read from the per-minute rollups of a database, or from an `llmpulse serve` server
    (`--server-url`: the same view, drawn here). Example:

        llmpulse flow support --window 6h --format mermaid > support.mmd
        llmpulse flow support --format svg -o support.svg
    """
    from llmpulse.cli._options import parse_until, parse_window, run_or_exit
    from llmpulse.cli._source import open_source
    from llmpulse.flow import to_mermaid, to_svg

    def work() -> str:
        seconds = parse_window("--window", window)
        end = parse_until(until)
        source = open_source(database_url, server_url, api_key, "llmpulse flow")
        try:
            view = source.flow_view(name, end - seconds, end)
        finally:
            source.close()
        if fmt is Format.json:
            text = json.dumps(view.as_dict(), indent=2) + "\n"
        else:
            text = to_svg(view) if fmt is Format.svg else to_mermaid(view)
        if output is not None:
            try:
                output.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise ValueError(f"cannot write {output}: {exc.strerror or exc}") from exc
            return ""
        return text

    sys.stdout.write(run_or_exit(work))


def register(app: typer.Typer) -> None:
    """Add ``flow`` to the app."""
    app.command("flow")(flow)
