"""Alert notification log per group, the evaluator's last tick, and outbox look-up indexes.

* ``alert_groups``: per channel and notification group, when it was last notified and which
  alerts (fingerprints) the receiver was told are firing: Alertmanager's notification log, so
  ``group_wait``, ``group_interval`` and ``repeat_interval`` hold across restarts and a
  resolved notice goes only to receivers that heard of the alert.
* ``alert_leases.renewed_at``: when the lease holder last evaluated, so a new evaluator knows
  how long nobody evaluated and does not count that downtime as time spent pending.
* ``alert_outbox (status, channel, group_key, id)``: the delivery worker's "oldest pending row
  of each group" query; ``(channel, group_key, created_at)``: "when was this group last queued"
  (asked per group each tick for channels with a resend interval).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copy of the model type: a revision must not change when models.py does.
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    """Add the notification log, the lease's renewal time and the outbox indexes."""
    op.create_table(
        "alert_groups",
        sa.Column("channel", sa.String(128), nullable=False),
        sa.Column("group_key", sa.String(64), nullable=False),
        sa.Column("sent_at", sa.Double(), nullable=False),
        sa.Column("firing", _JSON, nullable=False),
        sa.PrimaryKeyConstraint("channel", "group_key", name=op.f("pk_alert_groups")),
    )
    with op.batch_alter_table("alert_leases") as batch:
        batch.add_column(sa.Column("renewed_at", sa.Double(), nullable=True))
    op.create_index(
        op.f("ix_alert_outbox_status_channel_group_key_id"),
        "alert_outbox",
        ["status", "channel", "group_key", "id"],
    )
    op.create_index(
        op.f("ix_alert_outbox_channel_group_key_created_at"),
        "alert_outbox",
        ["channel", "group_key", "created_at"],
    )


def downgrade() -> None:
    """Drop them again."""
    op.drop_index(op.f("ix_alert_outbox_channel_group_key_created_at"), "alert_outbox")
    op.drop_index(op.f("ix_alert_outbox_status_channel_group_key_id"), "alert_outbox")
    with op.batch_alter_table("alert_leases") as batch:
        batch.drop_column("renewed_at")
    op.drop_table("alert_groups")
