"""Bring a database's schema to the newest revision, safely when several processes start at once."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from llmpulse.errors import MigrationError
from llmpulse.store.engine import WRITE_BEGIN

__all__ = ["VERSION_TABLE", "current_revision", "head_revision", "upgrade"]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "llmpulse_alembic_version"
# Any constant: serializes concurrent upgrades of one PostgreSQL database.
_PG_LOCK_KEY = 0x6C6C6D70  # "llmp"


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Without it Alembic raises "No path_separator found" (a DeprecationWarning) whenever it
    # splits a path list, which fails applications and test suites run with warnings as errors.
    cfg.set_main_option("path_separator", "os")
    return cfg


@cache
def head_revision() -> str:
    """The newest revision shipped with this llmpulse."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships a revision
        raise MigrationError("no migration revisions found in the llmpulse package")
    return head


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at (``None`` for an empty database)."""
    ctx = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return ctx.get_current_revision()


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
