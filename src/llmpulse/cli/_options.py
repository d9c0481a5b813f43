"""What the read commands share: the database option, time windows, filters, error exits.

Imported by command modules only; it imports nothing heavy at module level.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Optional, TypeVar

import typer

if TYPE_CHECKING:
    from llmpulse.store import Store

__all__ = [
    "CREATE_WITH_UPGRADE",
    "DATABASE_HELP",
    "RECORD_FIRST",
    "ApiKey",
    "DatabaseUrl",
    "ServerUrl",
    "fail",
    "iso",
    "open_existing_store",
    "parse_until",
    "parse_window",
    "run_or_exit",
    "span_filters",
]

T = TypeVar("T")

DATABASE_HELP = (
    "Database to read (sqlite:///path.db or postgresql://user@host/db). "
    "Default: $LLMPULSE_DATABASE_URL, else sqlite:///./llmpulse.db."
)
SERVER_HELP = (
    "Ask an `llmpulse serve` server at this address (http://host:8000) instead of reading a "
    "database; same output. Default: $LLMPULSE_SERVER_URL (which beats $LLMPULSE_DATABASE_URL). "
    "Needs the `client` extra."
)
API_KEY_HELP = "API key for --server-url. Default: $LLMPULSE_API_KEY."

_Text = Optional[str]  # noqa: UP045 - typer reads annotations at runtime (Python 3.10 too)
# The options saying where a read command reads; resolved by cli._source.open_source (not by
# typer's envvar, so that a flag can be told from the environment).
DatabaseUrl = Annotated[_Text, typer.Option("--database-url", help=DATABASE_HELP)]
ServerUrl = Annotated[_Text, typer.Option("--server-url", help=SERVER_HELP)]
ApiKey = Annotated[_Text, typer.Option("--api-key", help=API_KEY_HELP)]


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print ``error: message`` on stderr; return the ``Exit`` to raise."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def run_or_exit(action: Callable[[], T], code: int = 1) -> T:
    """Run ``action``; an llmpulse error or a bad value becomes one line on stderr and ``code``.

    A database without the llmpulse tables, or with an older schema, needs no hint added here:
    the store's ``SchemaNotCurrentError`` names ``llmpulse db upgrade`` itself."""
    from llmpulse.errors import LlmpulseError

    try:
        return action()
    except (LlmpulseError, ValueError) as exc:
        lines = str(exc).strip().splitlines()
        raise fail(lines[0] if lines else type(exc).__name__, code) from None


def parse_window(option: str, text: str) -> float:
    """Seconds in the duration ``text`` given to ``option``; a ``ConfigError`` naming the option
    and saying how to write one otherwise."""
    from llmpulse._duration import parse_duration
    from llmpulse.errors import ConfigError

    try:
        return parse_duration(text)
    except ConfigError as exc:
        hint = ""
        if str(text).strip().startswith("-"):
            hint = f" (drop the minus sign: {option} always reaches back from the end time)"
        raise ConfigError(f"{option} {exc}{hint}") from None


def iso(ts: float) -> str:
    """A Unix time as an ISO-8601 UTC string to the second."""
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_until(text: str | None, option: str = "--until") -> float:
    """Unix seconds of ``text`` (ISO 8601, UTC when it has no zone, or Unix seconds); now if None."""
    if text is None:
        return time.time()
    from datetime import datetime, timezone

    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{option} {text!r} is not a time: use ISO 8601 (2025-06-01T12:00) or Unix seconds"
        ) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()


# What to do about a SQLite file that is not there, said by the command that found it missing.
RECORD_FIRST = "record something first, e.g. `llmpulse demo`, or pass --database-url"
CREATE_WITH_UPGRADE = "run `llmpulse db upgrade` to create it"


def open_existing_store(url: str, fix: str = RECORD_FIRST) -> Store:
    """Open the store at ``url`` without migrating it; a SQLite file that does not exist is a
    ``StoreUnavailableError`` ending with ``fix`` (a read must not create an empty database
    where a path was mistyped)."""
    from sqlalchemy.engine import make_url

    from llmpulse.config import normalize_database_url
    from llmpulse.errors import StoreUnavailableError
    from llmpulse.store import Store

    try:
        parsed = make_url(normalize_database_url(url))
    except Exception:
        parsed = None  # Store.open reports malformed URLs in its own words
    if parsed is not None and parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if path not in (None, "", ":memory:") and not os.path.exists(path):
            raise StoreUnavailableError(
                f"no database at {url}: the file {path} does not exist ({fix})"
            )
    return Store.open(url, migrate=False)


def span_filters(**given: str | None) -> dict[str, str]:
    """The span filters that were given (``None`` means not filtered); exits naming the option
    when ``kind`` or ``status`` is not one of llmpulse's (the server refuses those as well)."""
    from llmpulse.schema import SpanKind, SpanStatus

    for option, enum in (("kind", SpanKind), ("status", SpanStatus)):
        value = given.get(option)
        allowed = [e.value for e in enum]
        if value is not None and value not in allowed:
            raise fail(f"--{option} {value!r} is not a span {option}: choose from "
                       f"{', '.join(allowed)}")  # fmt: skip
    return {key: value for key, value in given.items() if value is not None}
