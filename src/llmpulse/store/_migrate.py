"""Bring a database's schema to the newest revision, safely when several processes start at once.

Alembic (with Mako and Pygments, which it imports) is loaded only to run an upgrade: it adds
11 MB to a process and half a second to its start. Finding the newest revision (read from the
revision files) and the database's (one query of the version table) needs neither, so a
server or an application whose schema is current never loads it.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, inspect, text

from llmpulse.errors import MigrationError
from llmpulse.store.engine import WRITE_BEGIN

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "VERSION_TABLE",
    "current_revision",
    "head_revision",
    "known_revisions",
    "names_a_missing_object",
    "upgrade",
]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "llmpulse_alembic_version"
# Any constant: serializes concurrent upgrades of one PostgreSQL database.
_PG_LOCK_KEY = 0x6C6C6D70  # "llmp"


# ``revision: str = "0005"`` and ``down_revision: str | None = "0004"`` (or None) at the top
# level of a revision file, as Alembic writes them.
_REVISION = re.compile(r"""^revision(?:\s*:[^=]*)?=\s*["']([^"']+)["']""", re.MULTILINE)
_DOWN_REVISION = re.compile(
    r"""^down_revision(?:\s*:[^=]*)?=\s*(?:["']([^"']+)["']|None)""", re.MULTILINE
)


def _config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Without it Alembic raises "No path_separator found" (a DeprecationWarning) whenever it
    # splits a path list, which fails applications and test suites run with warnings as errors.
    cfg.set_main_option("path_separator", "os")
    return cfg


@cache
def known_revisions() -> frozenset[str]:
    """Every revision shipped with this llmpulse (read from the revision files)."""
    return _revision_graph()[0]


@cache
def head_revision() -> str:
    """The newest revision shipped with this llmpulse: the one no other revision follows."""
    return _revision_graph()[1]


@cache
def _revision_graph() -> tuple[frozenset[str], str]:
    revisions: set[str] = set()
    followed: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        found = _REVISION.search(source)
        if found is None:  # __init__.py
            continue
        revisions.add(found.group(1))
        down = _DOWN_REVISION.search(source)
        if down is None:
            raise MigrationError(f"{path.name}: no down_revision line")
        if down.group(1):
            followed.add(down.group(1))
    heads = revisions - followed
    if len(heads) != 1:  # pragma: no cover - the package always ships one line of revisions
        raise MigrationError(f"expected one newest migration revision, found {sorted(heads)}")
    return frozenset(revisions), heads.pop()


# SQLSTATEs of PostgreSQL's undefined_table and undefined_column.
_MISSING_OBJECT_SQLSTATES = ("42P01", "42703")
# SQLite says it in words: a read of a missing table or column, an insert into a missing column.
_SQLITE_MISSING_OBJECT = ("no such table", "no such column", "has no column named")


def names_a_missing_object(exc: BaseException) -> bool:
    """Whether a statement failed for want of a table or a column: what a database without the
    llmpulse schema, or with an older one, answers (SQLite's ``no such table`` / ``no such
    column``, PostgreSQL's undefined_table / undefined_column). Never the fault of one row."""
    orig: Any = getattr(exc, "orig", None)
    if hasattr(orig, "sqlstate"):  # psycopg: the code, not the text (which may quote data)
        return orig.sqlstate in _MISSING_OBJECT_SQLSTATES
    reason = str(orig if orig is not None else exc)
    return any(text in reason for text in _SQLITE_MISSING_OBJECT)


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at (``None`` for an empty database)."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    found = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars().all()
    if len(found) > 1:
        raise MigrationError(f"{VERSION_TABLE} holds several revisions: {sorted(found)}")
    return found[0] if found else None


def upgrade(engine: Engine, shown_url: str) -> tuple[str | None, str]:
    """Upgrade to head; returns (revision before, revision after).

    The whole upgrade is one transaction taken with the write lock (``BEGIN IMMEDIATE`` on
    SQLite, an advisory lock on PostgreSQL), so a second process starting at the same moment
    waits and then finds the schema current instead of racing to create the same tables.
    """
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(**{WRITE_BEGIN: True})
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
                before = current_revision(conn)
                if before != head_revision():
                    from alembic import command

                    cfg = _config()
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "head")
            return before, head_revision()
    except MigrationError:
        raise
    except Exception as exc:
        raise MigrationError(
            f"could not bring the schema of {shown_url} to revision {head_revision()}: {exc}"
        ) from exc
