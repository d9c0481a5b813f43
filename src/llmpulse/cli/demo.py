"""``llmpulse demo``: a simulated LLM pipeline with an incident, and what llmpulse caught."""

from __future__ import annotations

import typer

__all__ = ["register"]


def demo(
    requests: int = typer.Option(
        400, "--requests", "-n", min=20, help="Support tickets to answer (4 worker threads)."
    ),
    database_url: str = typer.Option(
        None,
        "--database-url",
        envvar="LLMPULSE_DATABASE_URL",
        help="Where to record. Default: sqlite:///./llmpulse.db (a file in this directory).",
    ),
    seed: int = typer.Option(
        7, help="Seed for tickets and the simulator: the same seed gives the same run."
    ),
    no_recovery: bool = typer.Option(
        False, "--no-recovery", help="Call gpt-4o without retries and fallbacks."
    ),
) -> None:
    """Run a simulated LLM pipeline with an incident midway, and show what llmpulse caught.

    A support assistant (classify → retrieve → answer → route) runs through the real openai
    client against the local LLM simulator; midway, gpt-4o gets slow, flaky and verbose. The
    report shows per-model and per-step stats, the incident on a timeline, routing decisions,
    what recovery did, and what the checks detected. No API key, server or network needed.
    """
    from llmpulse.cli._extras import require_extra

    require_extra("demo", "llmpulse demo")
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from llmpulse.config import DEFAULT_DATABASE_URL
    from llmpulse.demo.runner import DemoSettings, run_demo
    from llmpulse.errors import LlmpulseError

    console = Console()
    settings = DemoSettings(
        requests=requests,
        database_url=database_url or DEFAULT_DATABASE_URL,
        seed=seed,
        recovery=not no_recovery,
    )
    console.print(f"[bold]llmpulse demo[/]: {requests} tickets → {settings.database_url}")
    console.print(
        f"Incident midway (tickets {int(requests * settings.incident.start)}–"
        f"{int(requests * settings.incident.end)}): {settings.incident.describe()}\n"
    )
    try:
        from llmpulse.store import Store

        Store.open(settings.database_url).close()  # fail fast, before any work, on a bad URL
        with Progress(
            TextColumn("answering tickets"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as bar:
            task = bar.add_task("tickets", total=requests)
            result = run_demo(settings, progress=lambda k: bar.advance(task, k))
        _report(console, result)
    except LlmpulseError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None


def _report(console, result) -> None:  # type: ignore[no-untyped-def]
    from llmpulse.demo.report import render_report
    from llmpulse.store import Store

    store = Store.open(result.settings.database_url)
    try:
        console.print()
        console.print(render_report(store, result))
        _checks(console, store, result)
    finally:
        store.close()
    stats = result.sdk_stats
    console.print(
        f"\nRecorded {stats.recorded:,} records in {result.wall_seconds:.1f} s; stored {stats.exported:,}, "
        f"dropped {stats.dropped_total}. Explore: `llmpulse check`, `llmpulse db health`."
    )


def _checks(console, store, result) -> None:  # type: ignore[no-untyped-def]
    try:
        from llmpulse.demo.findings import render_findings
    except ImportError:
        return
    console.print(render_findings(store, result))


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the app."""
    app.command("demo")(demo)
