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
