"""``llmpulse alerts list|ack|resolve|silence|rules|validate|run``: alerting from the shell.

``run`` evaluates the rules and delivers notifications until stopped (SIGTERM or Ctrl-C), the
same engine ``llmpulse serve --alert-rules`` runs; the other commands read and change the
alert state in the store directly.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from typing import Any

import typer

from llmpulse.cli._options import DATABASE_HELP, fail, run_or_exit
from llmpulse.config import resolve_database_url

__all__ = ["register"]

EXIT_INVALID = 2

alerts_app = typer.Typer(
    help="Alert rules, the engine, and alert state: list, acknowledge, resolve, silence.",
    no_args_is_help=True,
)

_DB = typer.Option(None, "--database-url", help=DATABASE_HELP)
_RULES = typer.Option(None, "--rules", help="Rules file (YAML): rules, channels, inhibit_rules.")
_ALLOW = typer.Option(
    None,
    "--allow-network",
    help="Internal address, CIDR or host a channel may reach (e.g. 127.0.0.1); repeat for more. "
    "Default: LLMPULSE_ALERT_ALLOW_NETWORK. A rules file's network: {allow: [...]} adds to it.",
)


def _policy(allow: list[str] | None) -> Any:
    """``--allow-network`` entries, else ``LLMPULSE_ALERT_ALLOW_NETWORK`` (as the server reads
    it); a bad entry is a ``ConfigError`` naming the flag or the variable."""
    from llmpulse._config_file import FieldError
    from llmpulse.alerting.channels import NetworkPolicy
    from llmpulse.alerting.channels._network import split_allow_setting
    from llmpulse.errors import ConfigError
    from llmpulse.server.settings import ENV_ALERT_ALLOW_NETWORK

    where = "--allow-network"
    if not allow:
        where = ENV_ALERT_ALLOW_NETWORK
        allow = split_allow_setting(os.environ.get(ENV_ALERT_ALLOW_NETWORK, ""))
    try:
        return NetworkPolicy(allow)
    except FieldError as exc:
        raise ConfigError(f"{where}: {exc.detail}") from None


def _rule_set(path: str | None, allow: list[str] | None) -> Any:
    from llmpulse.alerting import RuleSet, load_rules

    policy = _policy(allow)
    if path is None:
        return RuleSet(network=policy)
    return load_rules(path, policy=policy)


def _engine(database_url: str | None, rules: str | None, allow: list[str] | None, **kw: Any) -> Any:
    from llmpulse.alerting import AlertEngine
    from llmpulse.store import Store

    rule_set = _rule_set(rules, allow)
    return AlertEngine(Store.open(resolve_database_url(database_url)), rule_set, **kw)


@alerts_app.command("validate")
def validate(
    path: str = typer.Argument(..., help="Rules file to check."),
    allow: list[str] = _ALLOW,  # noqa: B008
) -> None:
    """Check a rules file; errors name the file, line and field.

    Example:

        llmpulse alerts validate rules.yaml
    """
    from llmpulse.errors import LlmpulseError

    try:
        rule_set = _rule_set(path, allow)
    except LlmpulseError as exc:
        raise fail(str(exc), EXIT_INVALID) from None
    allowed = rule_set.network.describe()["allow"] if rule_set.network is not None else []
    typer.echo(
        f"{path}: ok, {len(rule_set.rules)} rules, {len(rule_set.channels)} channels, "
        f"{len(rule_set.inhibit_rules)} inhibit rules"
        + (f"; channels may reach {', '.join(allowed)}" if allowed else "")
    )


@alerts_app.command("rules")
def rules(
    rules_file: str = _RULES,
    database_url: str = _DB,
    defaults: bool = typer.Option(
        False, "--defaults", help="Print the shipped default rules file."
    ),
    as_json: bool = typer.Option(False, "--json", help="One JSON document per line."),
) -> None:
    """List the rules the engine would evaluate (file and stored), or print the defaults.

    Example, start a rules file from the shipped defaults:

        llmpulse alerts rules --defaults > rules.yaml
    """
    from llmpulse.alerting import default_rules_text

    if defaults:
        typer.echo(default_rules_text(), nl=False)
        return
    engine = run_or_exit(lambda: _engine(database_url, rules_file, None), EXIT_INVALID)
    for rule in run_or_exit(lambda: list(engine.rules().values())):
        if as_json:
            doc = rule.to_spec() if rule.type != "callable" else {"name": rule.name}
            typer.echo(json.dumps({**doc, "source": rule.source}))
        else:
            what = rule.metric or rule.type
            levels = "/".join(f"{t:g}" for _, t in reversed(rule.thresholds())) or rule.severity
            typer.echo(
                f"{rule.name:24} {rule.source:5} {what:16} {levels:14} {','.join(rule.channels)}"
            )
    engine.store.close()


def _stop_on_signals(stop: threading.Event) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())


@alerts_app.command("run")
def run(
    rules_file: str = _RULES,
    database_url: str = _DB,
    allow: list[str] = _ALLOW,  # noqa: B008
    interval: float = typer.Option(30.0, "--interval", help="Seconds between evaluations."),
    once: bool = typer.Option(False, "--once", help="Evaluate once, deliver what is due, exit."),
    link_base: str = typer.Option(None, "--link-base", help="Server URL for links in messages."),
    owner: str = typer.Option(
        None,
        "--owner",
        help="Name of this evaluator, unique per running process. With a stable name a restart "
        "resumes its leases at once instead of after they expire. Default: host:pid:random.",
    ),
    lease: float = typer.Option(
        90.0, "--lease-seconds", help="Evaluator lease; another process takes over after it."
    ),
) -> None:
    """Evaluate the rules every --interval seconds and deliver notifications until stopped.

    Example:

        llmpulse alerts run --rules rules.yaml --interval 30
    """
    from llmpulse.alerting import AlertRunner, DeliveryWorker

    if not interval > 0 or not lease > interval:
        raise fail("--interval must be > 0 and --lease-seconds longer than it", EXIT_INVALID)
    engine = run_or_exit(
        lambda: _engine(database_url, rules_file, allow, owner=owner, lease_seconds=lease,
                        link_base=link_base),
        EXIT_INVALID,
    )  # fmt: skip
    worker = DeliveryWorker(engine.store, engine.channels, owner=engine.owner)
    runner = AlertRunner(engine, worker, interval_seconds=interval)
    if once:
        worker.recover()
        runner.tick_once()
        while runner.deliver_once():
            pass
        report = runner.last_report
        typer.echo(json.dumps({
            "evaluated": bool(report and report.evaluated), "firing": report.firing if report else 0,
            "delivered": worker.totals.delivered, "failed": worker.totals.failed,
        }))  # fmt: skip
        engine.release()
        engine.store.close()
        return
    stop = threading.Event()
    _stop_on_signals(stop)
    typer.echo(f"evaluating {len(engine.rules())} rules every {interval:g}s (owner {engine.owner})")
    runner.start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        runner.stop()
        engine.store.close()


@alerts_app.command("list")
def list_alerts(
    database_url: str = _DB,
    state: str = typer.Option(None, "--state", help="firing, acknowledged or resolved."),
    severity: str = typer.Option(None, "--severity", help="info, warning or critical."),
    model: str = typer.Option(None, "--model", help="Only alerts about this model."),
    active_only: bool = typer.Option(False, "--active", help="Only firing alerts."),
    limit: int = typer.Option(50, "--limit", min=1, max=1000, help="Show at most this many."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """Alerts, newest first.

    Example, the ones firing now:

        llmpulse alerts list --active
    """
    from dataclasses import asdict

    from llmpulse.store import Store

    filters = {"state": state, "severity": severity, "model": model, "active_only": active_only}
    if state not in (None, "firing", "acknowledged", "resolved"):
        raise fail("--state must be firing, acknowledged or resolved", EXIT_INVALID)

    def page() -> list[Any]:
        with Store.open(resolve_database_url(database_url)) as store:
            return store.alert_page(filters=filters, limit=limit)

    for a in run_or_exit(page):
        if as_json:
            typer.echo(json.dumps(asdict(a)))
            continue
        fired = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(a.fired_at))
        shown = "acked" if a.state == "firing" and a.acknowledged_at else a.state
        typer.echo(f"{a.id:>6} {fired}Z {shown:9} {a.severity:8} {a.rule:20} {a.summary}")


def _change(
    action: str, alert_id: int, who: str, note: str | None, db: str | None, rules: str | None
) -> None:
    engine = run_or_exit(lambda: _engine(db, rules, None), EXIT_INVALID)
    try:
        before = run_or_exit(lambda: engine.store.get_alert(alert_id))
        if before is None:
            raise fail(f"no alert {alert_id}")
        change = engine.acknowledge if action == "ack" else engine.resolve
        after = run_or_exit(lambda: change(alert_id, who, note))
    finally:
        engine.store.close()
    if after == before:
        raise fail(
            f"alert {alert_id} is {before.state}{' and acknowledged' if before.acknowledged_at else ''}: nothing to do"
        )
    typer.echo(f"alert {alert_id}: {'acknowledged' if action == 'ack' else 'resolved'} by {who}")


@alerts_app.command("ack")
def ack(
    alert_id: int = typer.Argument(..., help="The alert's id (from alerts list)."),
    who: str = typer.Option(..., "--who", help="Who acknowledges."),
    note: str = typer.Option(None, "--note", help="Why, for the record."),
    database_url: str = _DB,
) -> None:
    """Acknowledge a firing alert: no more repeats or escalations.

    Example, with an id from alerts list:

        llmpulse alerts ack 12 --who alice --note "provider incident, on it"
    """
    _change("ack", alert_id, who, note, database_url, None)


@alerts_app.command("resolve")
def resolve(
    alert_id: int = typer.Argument(..., help="The alert's id (from alerts list)."),
    who: str = typer.Option(..., "--who", help="Who resolves."),
    note: str = typer.Option(None, "--note", help="Why, for the record."),
    database_url: str = _DB,
    rules_file: str = _RULES,
) -> None:
    """Resolve a firing alert by hand (its resolved notice goes out through the outbox).

    Example:

        llmpulse alerts resolve 12 --who alice
    """
    _change("resolve", alert_id, who, note, database_url, rules_file)


def _matcher(text: str) -> dict[str, str]:
    for op in ("=~", "!~", "!=", "="):
        name, found, value = text.partition(op)
        if found:
            return {"name": name.strip(), "op": op, "value": value.strip().strip("\"'")}
    raise fail(
        f"--match {text!r}: write label=value, label!=value, label=~regex or label!~regex",
        EXIT_INVALID,
    )


@alerts_app.command("silence")
def silence(
    match: list[str] = typer.Option(None, "--match", help="label=value (or != =~ !~); repeat."),  # noqa: B008
    duration: str = typer.Option("1h", "--duration", help="How long: 30m, 2h, 1d."),
    who: str = typer.Option(None, "--who", help="Who silences."),
    comment: str = typer.Option("", "--comment", help="Why, shown with --list."),
    list_: bool = typer.Option(False, "--list", help="List silences that have not ended."),
    expire: str = typer.Option(None, "--expire", help="End the silence with this id now."),
    database_url: str = _DB,
) -> None:
    """Silence alerts matching every --match for --duration; or --list, or --expire ID.

    Example, mute gpt-4o's alerts for two hours:

        llmpulse alerts silence --match model=gpt-4o --duration 2h --who alice
    """
    from llmpulse._duration import parse_duration
    from llmpulse.alerting._silences import new_silence
    from llmpulse.store import Store

    now = time.time()
    with run_or_exit(lambda: Store.open(resolve_database_url(database_url))) as store:
        if list_:
            for s in run_or_exit(lambda: store.list_silences(now)):
                matchers = ",".join(f"{m['name']}{m['op']}{m['value']}" for m in s.matchers)
                ends = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(s.ends_at))
                typer.echo(f"{s.id} until {ends} {matchers} by {s.created_by}: {s.comment}")
            return
        if expire:
            if run_or_exit(lambda: store.expire_silence(expire, now)) is None:
                raise fail(f"no silence {expire}")
            typer.echo(f"silence {expire} expired")
            return
        if not match or not who:
            raise fail("give --match (one or more) and --who", EXIT_INVALID)
        seconds = run_or_exit(lambda: parse_duration(duration), EXIT_INVALID)
        record = run_or_exit(
            lambda: new_silence([_matcher(m) for m in match], starts_at=now, ends_at=now + seconds,
                                created_by=who, comment=comment, now=now),
            EXIT_INVALID,
        )  # fmt: skip
        run_or_exit(lambda: store.add_silence(record))
        typer.echo(
            f"silence {record.id} until {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(record.ends_at))}"
        )


def register(app: typer.Typer) -> None:
    """Add ``llmpulse alerts ...``."""
    app.add_typer(alerts_app, name="alerts")
