"""``llmpulse keys create|list|revoke``: API keys of the server, straight in the store.

The key is printed once by ``create``; the store keeps only its hash.
"""

from __future__ import annotations

import json
import time
from typing import Any

import typer

__all__ = ["register"]

EXIT_ERROR = 2

keys_app = typer.Typer(help="Create, list and revoke the server's API keys.", no_args_is_help=True)

_DB = typer.Option(
    None,
    "--database-url",
    help="Store URL. Default: $LLMPULSE_DATABASE_URL, else sqlite:///./llmpulse.db.",
)


def _open(url: str | None) -> Any:
    from llmpulse.config import resolve_database_url
    from llmpulse.store import Store

    return Store.open(resolve_database_url(url))


def _fail(exc: BaseException) -> typer.Exit:
    typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
    return typer.Exit(EXIT_ERROR)


@keys_app.command("create")
def create(
    name: str = typer.Option(..., "--name", help="What the key is for (shown in the list)."),
    scope: list[str] = typer.Option(  # noqa: B008
        ["read"], "--scope", help="read, ingest or admin; repeat for several."
    ),
    database_url: str = _DB,
    as_json: bool = typer.Option(False, "--json", help="Print the key and its record as JSON."),
) -> None:
    """Create a key and print it once (it cannot be shown again).

    Run it on the server's database. Example, a key for applications that send spans:

        llmpulse keys create --name ci-ingest --scope ingest
    """
    from llmpulse.errors import LlmpulseError
    from llmpulse.server.auth import generate_key

    try:
        with _open(database_url) as store:
            key, record = generate_key(store, name, scope)
    except (LlmpulseError, ValueError) as exc:
        raise _fail(exc) from None
    if as_json:
        typer.echo(json.dumps({"key": key, "key_id": record.key_id, "name": record.name,
                               "scopes": list(record.scopes)}))  # fmt: skip
        return
    typer.echo(key)
    typer.secho(
        f"key {record.key_id} ({', '.join(record.scopes)}) created; store it now: it is not "
        "shown again",
        err=True,
    )


@keys_app.command("list")
def list_(
    database_url: str = _DB,
    as_json: bool = typer.Option(False, "--json", help="Print the keys as JSON."),
) -> None:
    """List every key (never their secrets), revoked ones too.

    Example:

        llmpulse keys list --database-url postgresql://postgres@127.0.0.1:5432/llmpulse
    """
    from llmpulse.errors import LlmpulseError

    try:
        with _open(database_url) as store:
            records = store.list_api_keys()
    except LlmpulseError as exc:
        raise _fail(exc) from None
    rows = [
        {"key_id": r.key_id, "name": r.name, "scopes": list(r.scopes), "created_at": r.created_at,
         "revoked_at": r.revoked_at}
        for r in records
    ]  # fmt: skip
    if as_json:
        typer.echo(json.dumps(rows))
        return
    if not rows:
        typer.echo("no API keys")
    for r in rows:
        state = "revoked" if r["revoked_at"] is not None else "active"
        created = time.strftime("%Y-%m-%d %H:%M", time.gmtime(r["created_at"]))
        typer.echo(f"{r['key_id']}  {state:7}  {','.join(r['scopes']):18}  {created}  {r['name']}")


@keys_app.command("revoke")
def revoke(
    key_id: str = typer.Argument(..., help="The key's id (the part after lp_, see `keys list`)."),
    database_url: str = _DB,
) -> None:
    """Revoke a key: requests with it get 401 from now on.

    Example, with an id from keys list:

        llmpulse keys revoke 3f9a1c2b7d40
    """
    from llmpulse.errors import LlmpulseError
    from llmpulse.server.auth import parse_key

    key_id = parse_key(key_id) or key_id  # a whole key works too
    try:
        with _open(database_url) as store:
            record = store.revoke_api_key(key_id, at=time.time())
    except LlmpulseError as exc:
        raise _fail(exc) from None
    if record is None:
        raise _fail(ValueError(f"no API key {key_id!r}; see `llmpulse keys list`"))
    typer.echo(f"revoked {record.key_id} ({record.name})")


def register(app: typer.Typer) -> None:
    """Add ``keys`` to the app."""
    app.add_typer(keys_app, name="keys")
