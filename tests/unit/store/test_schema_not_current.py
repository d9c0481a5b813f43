"""A database without the llmpulse tables, or with an older schema, says so and names the fix.

Every store call (reads, writes, the alerting leases) raises ``SchemaNotCurrentError``, a
``StoreUnavailableError`` whose message names ``llmpulse db upgrade``, instead of "span_stats
failed" or a raw SQLAlchemy error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from llmpulse.errors import SchemaNotCurrentError, StoreError, StoreUnavailableError
from llmpulse.schema import MetricPoint
from llmpulse.store import Store
from llmpulse.store._migrate import head_revision
from tests.unit.store.conftest import T0, drop_every_table, make_span, open_at_revision

# One call of each kind: rollup read, raw read, write, alert transaction, lease, key write.
CALLS: dict[str, Callable[[Store], Any]] = {
    "span_stats": lambda s: s.span_stats(T0, T0 + 3600),
    "list_traces": lambda s: s.list_traces(T0, T0 + 3600),
    "write": lambda s: s.write(spans=[make_span()]),
    "take_lease": lambda s: s.take_lease("alert-evaluator", "me", now=T0, ttl=60),
    "release_lease": lambda s: s.release_lease("alert-evaluator", "me"),
    "add_api_key": lambda s: s.add_api_key("k1", "hash", "ci", ["read"], at=T0),
}


class TestNoLlmpulseTables:
    @pytest.mark.parametrize("call", CALLS, ids=list(CALLS))
    def test_another_programs_database_names_the_upgrade(
        self, database_url: str, call: str
    ) -> None:
        """A database holding only another program's table: every call says it has no llmpulse
        tables and how to create them, as a StoreUnavailableError (the server's 503)."""
        import sqlalchemy as sa

        with Store.open(database_url, migrate=False) as store:
            with store._engine.begin() as conn:  # noqa: SLF001
                conn.execute(sa.text("CREATE TABLE other_app (x INTEGER)"))
            with pytest.raises(SchemaNotCurrentError) as caught:
                CALLS[call](store)
        error = caught.value
        assert isinstance(error, StoreUnavailableError)
        assert error.revision is None and error.head == head_revision()
        message = str(error)
        assert message.startswith(f"{store.url} has no llmpulse tables (")
        assert message.endswith(": run `llmpulse db upgrade` to create them")
        assert call not in message
        assert error.problem == "has no llmpulse tables: run `llmpulse db upgrade` to create them"

    def test_tables_dropped_under_an_open_store(self, database_url: str) -> None:
        """Tables gone while the store is open (an empty file put in place): the same error,
        for the lease release a shutting-down alert evaluator makes too."""
        with Store.open(database_url) as store:
            drop_every_table(store)
            for call in ("span_stats", "release_lease"):
                with pytest.raises(SchemaNotCurrentError, match="has no llmpulse tables"):
                    CALLS[call](store)


class TestSchemaBehind:
    def test_a_missing_table_names_both_revisions_and_the_upgrade(self, database_url: str) -> None:
        """A schema upgraded only to 0006 (no ``traces`` table yet): listing traces says the
        schema is behind, which revision it is at and needs, and the command."""
        store = open_at_revision(database_url, "0006")
        with store, pytest.raises(SchemaNotCurrentError) as caught:
            store.list_traces(T0, T0 + 3600)
        error = caught.value
        assert error.revision == "0006" and error.head == head_revision()
        assert str(error).startswith(f"{store.url} has schema revision 0006, behind the ")
        assert error.problem == (
            f"has schema revision 0006, behind the {head_revision()} this llmpulse needs: "
            "run `llmpulse db upgrade` to bring it up to date"
        )
        assert "list_traces" not in str(error)

    def test_a_missing_column_names_the_upgrade(self, database_url: str) -> None:
        """At 0004 metric points have no ``point_id`` column yet: writing one says the schema
        is behind, not that the write failed."""
        point = MetricPoint(name="loss", value=0.5, timestamp=T0)
        store = open_at_revision(database_url, "0004")
        with store, pytest.raises(SchemaNotCurrentError, match="revision 0004, behind"):
            store.write(points=[point])

    def test_a_current_schema_missing_a_table_is_not_called_behind(
        self, sqlite_store: Store
    ) -> None:
        """A table dropped by hand from a current schema: an upgrade would not bring it back,
        so the error names the failed call and the missing table, not the upgrade."""
        with sqlite_store._write_tx() as conn:  # noqa: SLF001
            conn.exec_driver_sql("DROP TABLE traces")
        with pytest.raises(StoreError) as caught:
            sqlite_store.list_traces(T0, T0 + 3600)
        assert not isinstance(caught.value, SchemaNotCurrentError)
        assert "list_traces failed" in str(caught.value) and "traces" in str(caught.value)
