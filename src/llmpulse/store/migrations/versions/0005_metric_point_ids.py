"""Metric points get an idempotency key: ``metric_points.point_id``, unique when present.

The SDK gives every metric point a random ``point_id`` when it makes it. A batch sent again
after its acknowledgement was lost (the server committed, the client never heard) then finds
its points stored and inserts none of them twice, as spans already did by ``span_id``. Points
written without an id (older clients, ``Store.write`` by hand) keep ``NULL``, which a unique
index never treats as equal, so they are stored as before.

A unique index rather than a constraint: both backends add it without rebuilding the table,
and ``ON CONFLICT (point_id)`` uses it as its target on both.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``metric_points.point_id`` and its unique index."""
    op.add_column("metric_points", sa.Column("point_id", sa.String(64), nullable=True))
    op.create_index(op.f("ix_metric_points_point_id"), "metric_points", ["point_id"], unique=True)


def downgrade() -> None:
    """Drop the index and the column."""
    op.drop_index(op.f("ix_metric_points_point_id"), table_name="metric_points")
    with op.batch_alter_table("metric_points") as batch:
        batch.drop_column("point_id")
