"""Per-trace totals (``traces``), kept by ingest: a trace search pages over traces.

The trace listing used to group every span of its window by trace to learn each trace's first
start, duration and cost (over 24 h of 1M spans, ~140,000 spans for any page). One row per
trace (first start, last end, last start, spans, errors, tokens, cost) is upserted with the
spans it sums, in the same transaction; this revision fills it from the spans already stored.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``traces`` and fill it from the stored spans."""
    op.create_table(
        "traces",
        sa.Column("trace_id", sa.String(64), nullable=False),
        sa.Column("start_time", sa.Double(), nullable=False),
        sa.Column("end_time", sa.Double(), nullable=False),
        sa.Column("last_start", sa.Double(), nullable=False),
        sa.Column("spans", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("total_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_usd", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("trace_id", name=op.f("pk_traces")),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO traces (trace_id, start_time, end_time, last_start, spans, errors,"
        " input_tokens, output_tokens, total_tokens, cost_usd)"
        " SELECT trace_id, min(start_time), max(end_time), max(start_time), count(*),"
        " sum(CASE WHEN status = 'error' THEN 1 ELSE 0 END), coalesce(sum(input_tokens), 0),"
        " coalesce(sum(output_tokens), 0), coalesce(sum(total_tokens), 0), sum(cost_usd)"
        " FROM spans GROUP BY trace_id"
    )
    op.create_index(
        op.f("ix_traces_start_time_trace_id_end_time_cost_usd"),
        "traces",
        ["start_time", "trace_id", "end_time", "cost_usd"],
    )
    op.create_index(
        op.f("ix_traces_last_start_start_time_trace_id"),
        "traces",
        ["last_start", "start_time", "trace_id"],
    )


def downgrade() -> None:
    """Drop ``traces``."""
    op.drop_index(op.f("ix_traces_last_start_start_time_trace_id"), table_name="traces")
    op.drop_index(op.f("ix_traces_start_time_trace_id_end_time_cost_usd"), table_name="traces")
    op.drop_table("traces")
