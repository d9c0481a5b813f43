"""``llmpulse db``: bring the schema up to date, delete old data, check the database.

Every command takes ``--database-url`` (default: ``LLMPULSE_DATABASE_URL``, else
``sqlite:///./llmpulse.db``). Failures print one line naming the database (password masked)
and exit with status 1.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from llmpulse.config import resolve_database_url

db_app = typer.Typer(
    name="db",
    help="Manage the llmpulse database: upgrade the schema, delete old data, check health.",
    no_args_is_help=True,
)

_URL_HELP = "Database URL (sqlite:///path.db or postgresql://user@host/db). Default: $LLMPULSE_DATABASE_URL, else sqlite:///./llmpulse.db."

T = TypeVar("T")


def _run(action: Callable[[], T]) -> T:
    """Run ``action``; a store error becomes one line on stderr and exit status 1."""
    from llmpulse.errors import LlmpulseError

    try:
        return action()
    except LlmpulseError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None


@db_app.command("upgrade")
def upgrade(
    database_url: str | None = typer.Option(None, "--database-url", help=_URL_HELP),
) -> None:
    """Create or migrate the schema to the newest revision (safe to run repeatedly).

    Example:

        llmpulse db upgrade --database-url postgresql://postgres@127.0.0.1:5432/llmpulse
    """
    from llmpulse.store import Store

    def work() -> tuple[str, str | None, str]:
        with Store.open(resolve_database_url(database_url), migrate=False) as store:
            before, after = store.upgrade()
            return store.url, before, after

    url, before, after = _run(work)
    if before == after:
        typer.echo(f"{url}: schema already at revision {after}")
    else:
        typer.echo(f"{url}: schema upgraded from {before or 'empty'} to revision {after}")


@db_app.command("cleanup")
def cleanup(
    days: float = typer.Option(
        ..., "--days", min=0, help="Delete raw spans and metric points older than this many days."
    ),
    rollup_days: float = typer.Option(
        90.0, "--rollup-days", min=0, help="Delete rollups older than this many days."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Only show how many rows would be deleted; delete nothing."
    ),
    yes: bool = typer.Option(
        False, "--yes", "-y", help="Do not ask for confirmation (for cron jobs and scripts)."
    ),
    database_url: str | None = typer.Option(None, "--database-url", help=_URL_HELP),
) -> None:
    """Delete old raw data (and older rollups) in small transactions.

    Shows what will go and asks first (unless --yes); --dry-run only shows it. Example, keep
    30 days of raw spans, from a nightly job:

        llmpulse db cleanup --days 30 --yes
    """
    import time

    from llmpulse.cli._options import open_existing_store

    now = time.time()

    def preview() -> tuple[str, dict[str, int]]:
        # Never migrate nor create: a mistyped path must not leave an empty database behind.
        with open_existing_store(resolve_database_url(database_url)) as store:
            found = store.cleanup_preview(days, rollup_days=rollup_days, now=now)
            return store.url, found.as_dict()

    url, found = _run(preview)
    what = _cleanup_summary(found, days, rollup_days, now)
    if dry_run:
        typer.echo(f"{url}: would delete {what} (dry run: nothing deleted)")
        return
    if not any(found.values()):
        typer.echo(f"{url}: nothing to delete ({what})")
        return
    if not yes:
        warning = " — that is every span stored" if days == 0 and found["spans"] else ""
        try:
            agreed = typer.confirm(f"{url}: delete {what}{warning}?", default=False)
        except typer.Abort:
            agreed = False
        if not agreed:
            typer.secho(
                "nothing deleted (confirm at the prompt, or pass --yes in scripts)",
                err=True,
                fg=typer.colors.YELLOW,
            )
            raise typer.Exit(1)

    def work() -> dict[str, int]:
        with open_existing_store(resolve_database_url(database_url)) as store:
            return store.cleanup(days, rollup_days=rollup_days, now=now).as_dict()

    deleted = _run(work)
    parts = ", ".join(f"{n} {table}" for table, n in deleted.items())
    typer.echo(f"{url}: deleted {parts}")


def _cleanup_summary(found: dict[str, int], days: float, rollup_days: float, now: float) -> str:
    from datetime import datetime, timezone

    def iso(days_back: float) -> str:
        moment = datetime.fromtimestamp(now - days_back * 86400, timezone.utc)
        return moment.strftime("%Y-%m-%d %H:%M UTC")

    return (
        f"{found['spans']:,} spans and {found['metric_points']:,} metric points started before "
        f"{iso(days)}, {found['rollups']:,} rollups before {iso(rollup_days)}"
    )


@db_app.command("health")
def health(
    database_url: str | None = typer.Option(None, "--database-url", help=_URL_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
) -> None:
    """Show backend, schema revision, row counts and size; exit 1 if unreachable or out of date.

    Example, for a script:

        llmpulse db health --json
    """
    from llmpulse.cli._options import CREATE_WITH_UPGRADE, open_existing_store

    def work() -> dict[str, Any]:
        # Checking health must not create an empty SQLite file where the user mistyped a path.
        with open_existing_store(
            resolve_database_url(database_url), fix=CREATE_WITH_UPGRADE
        ) as store:
            return store.health()

    report = _run(work)
    if as_json:
        typer.echo(json.dumps(report, sort_keys=True))
    else:
        _print_health(report)
    if not report.get("reachable") or not report.get("up_to_date"):
        raise typer.Exit(1)


def _print_health(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="llmpulse database", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    table.add_row("backend", report["backend"])
    table.add_row("url", report["url"])
    table.add_row("reachable", "yes" if report["reachable"] else f"no: {report.get('error', '')}")
    if report["reachable"]:
        revision = report.get("revision") or "none (empty database)"
        state = (
            "up to date"
            if report.get("up_to_date")
            else f"head is {report.get('head_revision')}: run `llmpulse db upgrade`"
        )
        table.add_row("schema", f"{revision} ({state})")
        for name, count in (report.get("rows") or {}).items():
            table.add_row(f"rows: {name}", "-" if count is None else f"{count:,}")
        table.add_row("size", _size(report.get("size_bytes", 0)))
        if "wal_bytes" in report:
            table.add_row("WAL", _size(report["wal_bytes"]))
        if "journal_mode" in report:
            table.add_row("journal mode", report["journal_mode"])
        if "server_version" in report:
            table.add_row("server", report["server_version"])
    console = Console(width=100)
    console.print(table)
    for warning in report.get("warnings", ()):
        console.print(f"[yellow]warning:[/] {escape(warning)}")


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def register(app: typer.Typer) -> None:
    """Add the ``db`` command group to the ``llmpulse`` app."""
    app.add_typer(db_app, name="db")
