"""``llmpulse check``: run the live-traffic and run-regression checks over the store.

Prints a table of findings (or JSON with ``--json``) and exits with a status a CI pipeline or a
deploy script can gate on: 0 when no finding reaches ``--fail-on``, 1 when one does, 2 when the
checks could not run (bad option, bad config file, database unreachable), with one line saying why.
"""

from __future__ import annotations

import enum
import json
import sys
from typing import Annotated, Any, Optional

import typer

__all__ = ["register"]

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


class FailOn(str, enum.Enum):
    """Which severity makes the command fail."""

    warning = "warning"
    critical = "critical"
    never = "never"


class Method(str, enum.Enum):
    """How live traffic is judged."""

    statistical = "statistical"
    rule = "rule"


def check(
    database_url: str = typer.Option(
        None,
        "--database-url",
        help="Database to check (sqlite:///path.db or postgresql://...). "
        "Default: $LLMPULSE_DATABASE_URL, else sqlite:///./llmpulse.db.",
    ),
    window: str = typer.Option(
        "24h", "--window", "-w", help="Report what happened in the last WINDOW: 30m, 6h, 7d."
    ),
    baseline: str = typer.Option(
        "7d",
        "--baseline",
        help="History before the window that defines normal (rule mode compares the window with it).",
    ),
    fail_on: Annotated[
        FailOn, typer.Option("--fail-on", help="Exit 1 when a finding is at least this severe.")
    ] = FailOn.critical,
    as_json: bool = typer.Option(
        False, "--json", help="Print the findings and a summary as one JSON object."
    ),
    config: str = typer.Option(
        None, "--config", help="YAML file with check settings (see docs/checks.md)."
    ),
    method: Annotated[
        Optional[Method],  # noqa: UP045 - typer reads the annotation at runtime (Python 3.10 too)
        typer.Option("--method", help="Override live.method: statistical (default) or rule."),
    ] = None,
    until: str = typer.Option(
        None,
        "--until",
        help="End of the window (ISO time, UTC if no zone, or Unix seconds). Default: now.",
    ),
) -> None:
    """Check recent traffic and benchmark runs for anomalies; exit non-zero to gate CI.

    Finds latency, token and cost spikes, error-rate jumps and branch shifts per model, prompt
    version and workflow step, and regressions and trends in benchmark or experiment runs.
    Exit 0: no finding at --fail-on; 1: findings at or above it; 2: the checks could not run.
    Example, a deploy gate over the last 6 hours, findings as JSON:

        llmpulse check --window 6h --fail-on critical --json
    """
    from llmpulse.cli._extras import require_extra

    require_extra("detection", "llmpulse check", code=EXIT_ERROR)
    from llmpulse.cli._options import run_or_exit

    report, url = run_or_exit(
        lambda: _run(database_url, window, baseline, config, method, until), EXIT_ERROR
    )
    failed = report.reaches(fail_on.value)
    if as_json:
        out = {**report.to_dict(), "database": url, "fail_on": fail_on.value, "failed": failed}
        sys.stdout.write(json.dumps(out, indent=2, sort_keys=False) + "\n")
    else:
        _print(report, url, window, baseline, fail_on.value, failed)
    raise typer.Exit(EXIT_FINDINGS if failed else EXIT_OK)


def _run(
    database_url: str | None,
    window: str,
    baseline: str,
    config: str | None,
    method: Method | None,
    until: str | None,
) -> tuple[Any, str]:
    from dataclasses import replace

    from llmpulse.checks import CheckConfig, run_checks
    from llmpulse.cli._options import open_existing_store, parse_until, parse_window
    from llmpulse.config import resolve_database_url

    window_s, baseline_s = parse_window("--window", window), parse_window("--baseline", baseline)
    cfg = CheckConfig.from_yaml(config) if config else CheckConfig()
    if method is not None:
        cfg = replace(cfg, live=replace(cfg.live, method=method.value))
    end = parse_until(until)
    # Checking must not create an empty SQLite file where the user mistyped a path.
    with open_existing_store(resolve_database_url(database_url)) as store:
        start = end - window_s
        report = run_checks(
            store, start=start, end=end, baseline_start=start - baseline_s, config=cfg
        )
        return report, store.url


def _print(report: Any, url: str, window: str, baseline: str, fail_on: str, failed: bool) -> None:
    from rich.console import Console

    from llmpulse.checks import findings_table, runs_table
    from llmpulse.checks._findings import iso

    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # CI logs: no terminal to wrap to, keep rows on one line
    console.print(
        f"[bold]llmpulse check[/] {url}: window {window} ({iso(report.start)} → {iso(report.end)}), "
        f"baseline {baseline}; {report.series_checked} series checked"
    )
    if report.findings:
        narrow = console.width < 140  # the full table needs about 140 columns
        console.print(
            findings_table(
                report.findings, title=f"{len(report.findings)} finding(s)", compact=narrow
            )
        )
        for f in report.findings:
            console.print(
                f"• [{'red' if f.severity == 'critical' else 'yellow'}]{f.severity}[/]: {f.message}"
            )
    else:
        console.print("[green]No findings.[/]")
    if report.runs_summary:
        console.print(runs_table(report.runs_summary))
    thin = [s for s in report.skipped if not s.startswith("no spans")]
    if len(thin) < len(report.skipped):
        console.print("[dim]No spans in the window or its baseline: live traffic not checked.[/]")
    if thin:
        console.print(
            f"[dim]{len(thin)} series had too little data to judge (see --json 'skipped').[/]"
        )
    counts = report.counts()
    verdict = "[bold red]FAIL[/]" if failed else "[green]ok[/]"
    console.print(
        f"{counts['critical']} critical, {counts['warning']} warning → {verdict} (--fail-on {fail_on})"
    )


def register(app: typer.Typer) -> None:
    """Add ``check`` to the app."""
    app.command("check")(check)
