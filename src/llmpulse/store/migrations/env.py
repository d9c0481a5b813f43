"""Alembic environment: runs on the connection ``llmpulse.store`` hands over.

When run from the ``alembic`` command line (developers only), it connects to
``sqlalchemy.url`` of alembic.ini instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from llmpulse.store.models import metadata

VERSION_TABLE = "llmpulse_alembic_version"


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        _run(conn)
        conn.commit()


if context.is_offline_mode():
    raise SystemExit("llmpulse migrations run online only (on a live connection)")
_main()
