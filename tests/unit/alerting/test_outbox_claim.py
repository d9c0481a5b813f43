"""The delivery worker's look-ups: the oldest pending row of each group that is due, and when a
group was last queued, both served by indexes (migration 0006) on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa

NOW = 1_800_000_000.0


def _enqueue(store, rows: list[tuple[str, str, str, float]]) -> None:
    with store.alert_transaction() as tx:
        for key, channel, group, at in rows:
            tx.enqueue(key, channel, group, {"k": key}, at)


class TestClaim:
    def test_groups_in_backoff_do_not_hide_a_due_one(self, store) -> None:
        """500 groups waiting out a backoff, queued first, and one group due now: the due one
        is claimed (a scan of the oldest pending rows alone would never reach it)."""
        waiting = [(f"w{i}", "hook", f"g{i}", NOW + 600) for i in range(500)]
        _enqueue(store, [*waiting, ("due", "hook", "late", NOW - 1)])
        [row] = store.claim_outbox("w", NOW, lease_s=60, limit=20)
        assert row.idempotency_key == "due"
        assert store.claim_outbox("w2", NOW, lease_s=60, limit=20) == []  # leased by w

    def test_only_the_oldest_row_of_a_group_goes_out(self, store) -> None:
        """Rows of one group go in order: the second waits while the first is pending."""
        _enqueue(store, [("first", "hook", "g", NOW - 10), ("second", "hook", "g", NOW - 5),
                         ("other", "mail", "g", NOW - 1)])  # fmt: skip
        claimed = store.claim_outbox("w", NOW, lease_s=60, limit=20)
        assert [r.idempotency_key for r in claimed] == ["first", "other"]
        store.finish_outbox(claimed[0].id, "w", status="delivered", at=NOW)
        [after] = store.claim_outbox("w", NOW, lease_s=60, limit=20)
        assert after.idempotency_key == "second"

    def test_lookups_have_their_indexes(self, store) -> None:
        """The per-group look-ups are indexed on both databases (migration 0006)."""
        indexes = sa.inspect(store._engine).get_indexes("alert_outbox")
        columns = {tuple(ix["column_names"]) for ix in indexes}
        assert ("status", "channel", "group_key", "id") in columns
        assert ("channel", "group_key", "created_at") in columns
        lease = {c["name"] for c in sa.inspect(store._engine).get_columns("alert_leases")}
        assert "renewed_at" in lease
        assert "alert_groups" in sa.inspect(store._engine).get_table_names()
