"""One span-row contract: what the SDK hands the store as ready rows is what the store accepts."""

from __future__ import annotations

import llmpulse
from llmpulse.store import Store
from tests.faults._accounting import assert_accounting


def test_clean_records_are_all_stored(database_url: str, store: Store) -> None:
    client = llmpulse.init(database_url, instrument=())
    with llmpulse.span("step", kind="chain"):
        llmpulse.record_llm_call("gpt-4o-mini", input_tokens=10, output_tokens=2)
    llmpulse.record_metric("loss", 0.5)
    stats = assert_accounting(client, store, expect_recorded=3)
    assert stats.dropped_total == 0


class TestOneContract:
    def test_columns_are_the_tables(self) -> None:
        """The contract's column lists are the tables' columns (besides surrogate ids)."""
        from llmpulse._rows import POINT_COLUMNS, RUN_COLUMNS, SPAN_COLUMNS
        from llmpulse.store.models import metadata

        def columns(table: str) -> tuple[str, ...]:
            return tuple(c.name for c in metadata.tables[table].columns if c.name != "id")

        assert columns("spans") == SPAN_COLUMNS
        assert columns("metric_points") == POINT_COLUMNS
        assert columns("runs") == RUN_COLUMNS

    def test_span_row_takes_the_columns_in_order(self) -> None:
        """``span_row``'s parameters are SPAN_COLUMNS (latency derived): one order to follow."""
        import inspect

        from llmpulse._rows import SPAN_COLUMNS, span_row

        params = tuple(inspect.signature(span_row).parameters)
        assert params == tuple(c for c in SPAN_COLUMNS if c != "latency_ms")

    def test_sdk_and_store_share_the_contract(self) -> None:
        """Neither side keeps its own copy of the order or the limits."""
        from llmpulse import _rows
        from llmpulse.sdk import _convert
        from llmpulse.store import _validate

        assert _validate.SPAN_COLUMNS is _rows.SPAN_COLUMNS
        assert _validate._ready_row is _rows.span_row
        assert _convert._span_row is _rows.span_row
        for module in (_convert, _validate):
            assert not hasattr(module, "_MAX_INT")
