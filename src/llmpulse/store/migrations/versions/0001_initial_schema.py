"""Initial schema: spans, metric points, runs, and per-minute/per-hour rollups of spans.

On PostgreSQL also the function ``llmpulse_hist_add`` that merges rollup histograms.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the model types: a revision must not change when models.py does.
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_HIST = sa.LargeBinary().with_variant(postgresql.ARRAY(sa.BigInteger()), "postgresql")

# Adds two dense histograms (first bin, counts); out-of-range subscripts read as NULL -> 0.
# SQLite gets the same function from Python (llmpulse.store._histogram.hist_add_bytes).
_PG_HIST_ADD = """
CREATE FUNCTION llmpulse_hist_add(lo1 integer, a bigint[], lo2 integer, b bigint[]) RETURNS bigint[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT array_agg(coalesce(a[i - lo1 + 1], 0) + coalesce(b[i - lo2 + 1], 0) ORDER BY i)
    FROM generate_series(least(lo1, lo2), greatest(lo1 + cardinality(a), lo2 + cardinality(b)) - 1) AS i
$$
"""
_SUMS = (
    "count", "errors", "input_tokens", "output_tokens", "total_tokens", "cache_read_tokens",
    "cache_write_tokens", "reasoning_tokens",
)  # fmt: skip


def _key_columns() -> list[sa.Column[int]]:
    return [
        sa.Column("resolution", sa.Integer(), nullable=False),
        sa.Column("bucket_start", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.BigInteger(), nullable=False),
    ]


def _counter(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger(), nullable=False)


def upgrade() -> None:
    """Create every table and index."""
    op.create_table(
        "spans",
        sa.Column("id", _ROW_ID, autoincrement=True, nullable=False),
        sa.Column("span_id", sa.String(64), nullable=False),
        sa.Column("trace_id", sa.String(64), nullable=False),
        sa.Column("parent_id", sa.String(64), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("start_time", sa.Double(), nullable=False),
        sa.Column("end_time", sa.Double(), nullable=False),
        sa.Column("latency_ms", sa.Double(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        *[
            sa.Column(c, sa.Text(), nullable=True)
            for c in ("error_type", "error_message", "model", "provider", "prompt_version")
        ],
        *[
            sa.Column(c, sa.BigInteger(), nullable=True)
            for c in (
                "input_tokens",
                "output_tokens",
                "total_tokens",
                "cache_read_tokens",
                "cache_write_tokens",
                "reasoning_tokens",
            )
        ],
        sa.Column("cost_usd", sa.Double(), nullable=True),
        sa.Column("ttft_ms", sa.Double(), nullable=True),
        *[
            sa.Column(c, sa.Text(), nullable=True)
            for c in ("session_id", "user_id", "service", "input", "output")
        ],
        sa.Column("attributes", _JSON, nullable=False),
        sa.Column("events", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spans")),
        sa.UniqueConstraint("span_id", name=op.f("uq_spans_span_id")),
    )
    op.create_index(op.f("ix_spans_start_time"), "spans", ["start_time"])
    op.create_index(op.f("ix_spans_trace_id"), "spans", ["trace_id"])

    op.create_table(
        "metric_points",
        sa.Column("id", _ROW_ID, autoincrement=True, nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("timestamp", sa.Double(), nullable=False),
        sa.Column("labels", _JSON, nullable=False),
        sa.Column("run_id", sa.String(128), nullable=True),
        sa.Column("step", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_points")),
    )
    op.create_index(op.f("ix_metric_points_name_timestamp"), "metric_points", ["name", "timestamp"])
    op.create_index(
        op.f("ix_metric_points_run_id_name_step"), "metric_points", ["run_id", "name", "step"]
    )
    op.create_index(op.f("ix_metric_points_timestamp"), "metric_points", ["timestamp"])

    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(128), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("experiment", sa.Text(), nullable=True),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("started_at", sa.Double(), nullable=False),
        sa.Column("ended_at", sa.Double(), nullable=True),
        sa.Column("params", _JSON, nullable=False),
        sa.Column("metrics", _JSON, nullable=False),
        sa.Column("tags", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_runs")),
    )
    op.create_index(op.f("ix_runs_started_at"), "runs", ["started_at"])

    op.create_table(
        "rollup_keys",
        sa.Column("id", _ROW_ID, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        *[sa.Column(c, sa.Text(), nullable=False) for c in ("name", "model", "provider", "prompt_version", "branch")],
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollup_keys")),
        sa.UniqueConstraint(
            "kind", "name", "model", "provider", "prompt_version", "branch",
            name=op.f("uq_rollup_keys_kind_name_model_provider_prompt_version_branch"),
        ),
    )  # fmt: skip
    op.create_table(
        "rollups",
        *_key_columns(),
        *[_counter(c) for c in _SUMS],
        sa.Column("cost_usd", sa.Double(), nullable=False),
        _counter("priced_count"),
        sa.Column("latency_ms_sum", sa.Double(), nullable=False),
        sa.Column("ttft_ms_sum", sa.Double(), nullable=False),
        _counter("ttft_count"),
        sa.Column("hist_lo", sa.Integer(), nullable=False),
        sa.Column("hist", _HIST, nullable=False),
        sa.PrimaryKeyConstraint("resolution", "bucket_start", "key_id", name=op.f("pk_rollups")),
        sqlite_with_rowid=False,
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_HIST_ADD)


def downgrade() -> None:
    """Drop every table (and with them their indexes)."""
    for table in ("rollups", "rollup_keys", "runs", "metric_points", "spans"):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION llmpulse_hist_add(integer, bigint[], integer, bigint[])")
