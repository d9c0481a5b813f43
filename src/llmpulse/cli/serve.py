"""``llmpulse serve``: run the server (FastAPI on uvicorn) over a store.

Settings come from the flags, then ``LLMPULSE_*`` environment variables, then a YAML file
(``--config`` or ``LLMPULSE_SERVER_CONFIG``); see llmpulse.server.settings. On an address other
than loopback the server refuses to start while no API key exists, unless ``--insecure``.
"""

from __future__ import annotations

import os

import typer

__all__ = ["register"]

EXIT_ERROR = 2


def serve(
    host: str = typer.Option(None, "--host", help="Address to bind. Default: 127.0.0.1."),
    port: int = typer.Option(None, "--port", help="Port to bind. Default: 8000."),
    database_url: str = typer.Option(
        None,
        "--database-url",
        help="Store URL (sqlite:///path.db or postgresql://...). Default: "
        "$LLMPULSE_DATABASE_URL, else sqlite:///./llmpulse.db.",
    ),
    workers: int = typer.Option(None, "--workers", help="Server processes. Default: 1."),
    insecure: bool = typer.Option(
        None,
        "--insecure/--secure",
        help="Serve a non-loopback address without API keys (anyone who reaches it may read "
        "and write).",
    ),
    config: str = typer.Option(
        None, "--config", help="YAML file with server settings (flags and env override it)."
    ),
    alert_rules: str = typer.Option(
        None, "--alert-rules", help="Alert rules file; the server evaluates it (llmpulse alerts)."
    ),
    alert_allow_network: list[str] = typer.Option(  # noqa: B008
        None,
        "--alert-allow-network",
        help="Internal address, CIDR or host alert channels may reach (e.g. 127.0.0.1); repeat "
        "for more. Default: none (LLMPULSE_ALERT_ALLOW_NETWORK).",
    ),
) -> None:
    """Serve the REST API, native ingest and the OpenAPI page (/docs) over the store.

    The dashboard is at the same address (/). Example, on PostgreSQL:

        llmpulse serve --port 8000 --database-url postgresql://postgres@127.0.0.1:5432/llmpulse
    """
    from llmpulse.cli._extras import require_extra

    require_extra("server", "llmpulse serve")
    from llmpulse.errors import LlmpulseError
    from llmpulse.server.settings import ServerSettings

    try:
        settings = ServerSettings.resolve(
            config_file=config,
            host=host,
            port=port,
            database_url=database_url,
            workers=workers,
            insecure=insecure,
            alert_rules=alert_rules,
            alert_allow_network=alert_allow_network or None,
        )
        _preflight(settings)
    except LlmpulseError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(EXIT_ERROR) from None
    if settings.insecure and not _loopback(settings.host):
        typer.secho(
            f"warning: serving {settings.host} with --insecure: requests without an API key "
            "are accepted until one is created",
            err=True,
            fg=typer.colors.YELLOW,
        )
    _run(settings)


def serve_locally(
    database_url: str,
    port: int,
    *,
    alert_rules: str | None = None,
    allow_network: list[str] | None = None,
) -> None:
    """Serve ``database_url`` on 127.0.0.1:``port`` with one worker, until interrupted (what
    ``llmpulse demo --serve`` runs after its report), its alert engine evaluating the rules
    file ``alert_rules`` (its channels may reach the private hosts of ``allow_network``)."""
    from pathlib import Path

    from llmpulse.server.settings import ServerSettings

    settings = ServerSettings.resolve(
        host="127.0.0.1", port=port, database_url=database_url, workers=1,
        alert_rules=str(Path(alert_rules).resolve()) if alert_rules else None,
        alert_allow_network=",".join(allow_network) if allow_network else None,
    )  # fmt: skip
    _preflight(settings)
    _run(settings)


def _loopback(host: str) -> bool:
    from llmpulse.server.settings import is_loopback

    return is_loopback(host)


def _preflight(settings: object) -> None:
    """Migrate the store once (before any worker starts) and refuse an open public bind."""
    from llmpulse.errors import ConfigError
    from llmpulse.server.settings import ServerSettings
    from llmpulse.store import Store

    assert isinstance(settings, ServerSettings)
    check_port(settings.host, settings.port)
    with Store.open(settings.database_url, migrate=False) as store:
        current = store.schema_is_current()
    if not current:
        _migrate_apart(settings.database_url)
    with Store.open(settings.database_url, migrate=False) as store:
        if settings.require_auth and not store.any_api_key():
            raise ConfigError(
                f"refusing to serve {settings.host} without API keys: anyone who can reach it "
                "could read and write your data. Create one first (`llmpulse keys create "
                f"--name admin --scope admin --database-url {store.url}`), or pass --insecure"
            )
    if settings.alert_rules:  # a bad rules file stops the start here, in one line
        from llmpulse.alerting import load_rules
        from llmpulse.alerting.channels import NetworkPolicy

        load_rules(settings.alert_rules, policy=NetworkPolicy(settings.alert_network_allow))


def check_port(host: str, port: int) -> None:
    """A ``ConfigError`` saying what to do when ``host:port`` cannot be bound (most often
    another server on it), instead of uvicorn's log line after the app has started."""
    import socket

    from llmpulse.errors import ConfigError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"cannot serve on {host}:{port}: {exc.strerror or exc} (is another server, "
                "maybe an earlier `llmpulse serve`, running there? pick another --port)"
            ) from None


# What the child process of _migrate_apart runs: the upgrade, and a failure as one line.
_MIGRATE = """
import os, sys
from llmpulse.errors import LlmpulseError
from llmpulse.store import Store
try:
    Store.open(os.environ["LLMPULSE_MIGRATE_DATABASE_URL"]).close()
except LlmpulseError as exc:
    sys.exit(str(exc))
"""


def _migrate_apart(database_url: str) -> None:
    """Upgrade the schema in a child process: the server then never loads Alembic (with Mako
    and Pygments, 11 MB it would keep for its whole life). The URL goes by environment, not
    argument, so its password does not show in the process list."""
    import subprocess
    import sys

    from llmpulse.errors import MigrationError

    env = {**os.environ, "LLMPULSE_MIGRATE_DATABASE_URL": database_url}
    done = subprocess.run(
        [sys.executable, "-c", _MIGRATE], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        raise MigrationError(lines[-1] if lines else f"schema upgrade exited {done.returncode}")


def _run(settings: object) -> None:
    import uvicorn

    from llmpulse.server.app import SETTINGS_JSON_ENV, create_app
    from llmpulse.server.settings import ServerSettings

    assert isinstance(settings, ServerSettings)
    if settings.workers == 1:
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port)
        return
    os.environ[SETTINGS_JSON_ENV] = settings.to_json()
    # Every worker counts into one directory that each scrape merges (docs/server.md).
    from llmpulse.server.metrics import prepare_multiprocess

    prepare_multiprocess()
    uvicorn.run(
        "llmpulse.server.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
    )


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the app."""
    app.command("serve")(serve)
