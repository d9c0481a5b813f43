"""``llmpulse demo``: a simulated LLM pipeline with an incident, and what llmpulse caught."""

from __future__ import annotations

import typer

__all__ = ["register"]


def demo(
    requests: int = typer.Option(
        400, "--requests", "-n", min=20, help="Support tickets to answer."
    ),
    workers: int = typer.Option(
        4,
        "--workers",
        min=1,
        max=16,
        help="Threads answering tickets. On a busy machine use 1: each call's measured latency "
        "includes its wait for a CPU, which grows with the threads and can hide the incident's "
        "latency spike.",
    ),
    database_url: str = typer.Option(
        None,
        "--database-url",
        help="Where to record. Default: $LLMPULSE_DATABASE_URL, else sqlite:///./llmpulse.db "
        "(a file in this directory).",
    ),
    seed: int = typer.Option(
        7, help="Seed for tickets and the simulator: the same seed gives the same run."
    ),
    no_recovery: bool = typer.Option(
        False, "--no-recovery", help="Call gpt-4o without retries and fallbacks."
    ),
    keep: bool = typer.Option(
        False,
        "--keep",
        help="Add to what an earlier demo run stored instead of starting clean "
        "(the report then counts both runs).",
    ),
    alert_rules: str = typer.Option(
        None,
        "--alert-rules",
        help="Alert rules file: evaluate it along the run and send its notifications.",
    ),
    allow_network: list[str] = typer.Option(  # noqa: B008
        None, "--allow-network", help="Private host/CIDR the rules' channels may reach."
    ),
    serve: bool = typer.Option(
        False,
        "--serve",
        help="Then serve the demo's store: open the dashboard in a browser (with --alert-rules "
        "the server's alert engine goes on evaluating those rules).",
    ),
    port: int = typer.Option(8000, "--port", help="Port for --serve (on 127.0.0.1)."),
) -> None:
    """Run a simulated LLM pipeline with an incident midway, and show what llmpulse caught.

    A support assistant (classify → retrieve → answer → route) runs through the real openai
    client against the local LLM simulator; midway, gpt-4o gets slow, flaky and verbose. The
    report shows per-model and per-step stats, the incident on a timeline, routing decisions,
    what recovery did, and what the checks detected. No API key, server or network needed.

    Each run starts clean: what an earlier demo run stored in the same database is deleted
    first (--keep adds to it instead). A database holding anything else is never touched:
    the demo refuses it and asks for another --database-url. Example, a bigger run, then its
    store in the dashboard:

        llmpulse demo -n 1000 --seed 3 --serve
    """
    from llmpulse.cli._extras import require_extra

    require_extra("demo", "llmpulse demo")
    if serve:
        require_extra("server", "llmpulse demo --serve")
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from llmpulse.config import resolve_database_url
    from llmpulse.demo.runner import DemoSettings, run_demo
    from llmpulse.errors import LlmpulseError

    console = Console()
    settings = DemoSettings(
        requests=requests,
        database_url=resolve_database_url(database_url),
        seed=seed,
        recovery=not no_recovery,
        workers=workers,
    )
    from llmpulse.store.engine import mask_url

    console.print(f"[bold]llmpulse demo[/]: {requests} tickets → {mask_url(settings.database_url)}")
    console.print(
        f"Incident midway (tickets {int(requests * settings.incident.start)}–"
        f"{int(requests * settings.incident.end)}): {settings.incident.describe()}\n"
    )
    try:
        from llmpulse.store import Store

        rule_set = _rule_set(alert_rules, allow_network)  # a bad rules file fails first
        if serve:  # a busy port, before the run rather than after it
            from llmpulse.cli.serve import check_port

            check_port("127.0.0.1", port)
        with Store.open(settings.database_url) as store:  # fail fast on a bad URL
            _start_clean(console, store, keep)
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
        if rule_set is not None:
            _alerts(console, result, rule_set)
        if serve:
            from llmpulse.cli.serve import serve_locally

            rules = f"; alert rules {alert_rules}" if alert_rules else ""
            console.print(
                f"\n[bold]Dashboard:[/] http://127.0.0.1:{port}/ (serving {settings.database_url}"
                f"{rules}; Ctrl+C stops it)"
            )
            serve_locally(settings.database_url, port, alert_rules=alert_rules,
                          allow_network=allow_network)  # fmt: skip
    except LlmpulseError as exc:
        from rich.markup import escape

        # escape: "[postgres]" in an install hint is text, not a style tag to strip.
        console.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None


def _rule_set(path: str | None, allow: list[str] | None):  # type: ignore[no-untyped-def]
    if path is None:
        return None
    from llmpulse.alerting import load_rules
    from llmpulse.alerting.channels import NetworkPolicy

    return load_rules(path, policy=NetworkPolicy(allow or ()))


def _alerts(console, result, rule_set) -> None:  # type: ignore[no-untyped-def]
    """Evaluate the rules along the run (llmpulse.demo.alerts) and list the alerts."""
    import time

    from llmpulse.demo.alerts import replay_alerts

    replay = replay_alerts(result, rule_set)
    console.print(f"\n[bold]Alerts[/] ({len(rule_set.rules)} rules, {replay.ticks} evaluations, "
                  f"{replay.delivered} notifications delivered, {replay.failed} failed):")  # fmt: skip

    def clock(ts: float | None) -> str:
        return "-" if ts is None else time.strftime("%H:%M", time.localtime(ts))

    incident = f"{clock(result.incident_start)}–{clock(result.incident_end)}"
    for a in replay.alerts:
        console.print(f"  {a.severity:8} {a.rule:18} fired {clock(a.fired_at)} resolved "
                      f"{clock(a.resolved_at)}  {a.summary}")  # fmt: skip
    if not replay.alerts:
        console.print("  none fired")
    console.print(f"  (incident {incident})")


def _start_clean(console, store, keep: bool) -> None:  # type: ignore[no-untyped-def]
    """Delete an earlier demo run's data (unless ``keep``); refuse a database with other data."""
    import time

    from llmpulse.demo.runner import DEMO_SERVICE
    from llmpulse.errors import LlmpulseError

    future = time.time() + 366 * 86400
    services = {
        r.group["service"]: r.calls
        for r in store.raw_span_stats(0.0, future, group_by=("service",))
    }
    if not services:
        return
    demo_spans = services.pop(DEMO_SERVICE, 0)
    if keep:
        console.print(
            f"[yellow]--keep:[/] adding to the {sum(services.values()) + demo_spans:,} spans "
            f"already in {store.url}; the report below counts them too.\n"
        )
        return
    metrics = [n for n in store.metric_names(0.0, future) if not n.startswith("llmpulse_")]
    if services or metrics:
        others = ", ".join(f"{n:,} of {name or 'no service'}" for name, n in services.items())
        raise LlmpulseError(
            f"{store.url} already holds data that is not the demo's "
            f"({others or f'{len(metrics)} metric series'}); the demo neither mixes into it nor "
            "deletes it: pass --database-url sqlite:///./llmpulse-demo.db (or --keep to mix)"
        )
    deleted = store.cleanup(0, rollup_days=0, now=future)
    console.print(
        f"Starting clean: deleted the {deleted.spans:,} spans of an earlier demo run from "
        f"{store.url} (--keep adds to them instead).\n"
    )


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
        f"dropped {stats.dropped_total}."
    )
    console.print("Explore what it stored:")
    for command in explore_commands(result.settings.database_url):
        console.print(f"  {command}", soft_wrap=True, markup=False, highlight=False)


def explore_commands(database_url: str) -> list[str]:
    """What to run next on the demo's store (naming it unless it is the default one)."""
    from llmpulse.config import DEFAULT_DATABASE_URL
    from llmpulse.store.engine import mask_url

    where = (
        "" if database_url == DEFAULT_DATABASE_URL else f" --database-url {mask_url(database_url)}"
    )
    return [
        f"llmpulse stats --window 6h --by name{where}",
        f"llmpulse traces list --status error{where}",
        f"llmpulse flow support{where}",
        f"llmpulse check{where}",
        f"llmpulse serve{where}",
    ]


def _checks(console, store, result) -> None:  # type: ignore[no-untyped-def]
    try:
        from llmpulse.demo.findings import render_findings
    except ImportError:
        return
    console.print(render_findings(store, result))


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the app."""
    app.command("demo")(demo)
