"""Alerting tables: rules, series state, incidents and history, silences, outbox, leases.

* ``alert_rules``: rule documents saved through the API or synced from a rules file.
* ``alert_series``: evaluation state per fingerprint (pending since, firing, held).
* ``alerts`` and ``alert_events``: incidents with their lifecycle, and what happened to them.
* ``alert_silences``: matchers and a time range.
* ``alert_outbox``: notifications to deliver, written in the transaction of the change they
  report; the delivery worker leases, sends and records them.
* ``alert_leases``: which process evaluates the rules of a shared database, until when.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of the model types: a revision must not change when models.py does.
_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _col(name: str, kind: Any, null: bool = False) -> sa.Column[Any]:
    return sa.Column(name, kind, nullable=null)


def upgrade() -> None:
    """Create the alerting tables."""
    op.create_table(
        "alert_rules",
        _col("name", sa.String(128)),
        _col("spec", _JSON),
        _col("source", sa.String(16)),
        _col("created_at", sa.Double()),
        _col("updated_at", sa.Double()),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_alert_rules")),
    )
    op.create_table(
        "alert_series",
        _col("fingerprint", sa.String(32)),
        _col("rule", sa.String(128)),
        _col("labels", _JSON),
        _col("state", sa.String(16)),
        _col("active_at", sa.Double()),
        _col("last_true_at", sa.Double()),
        _col("alert_id", sa.BigInteger(), True),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_alert_series")),
    )
    op.create_index(op.f("ix_alert_series_rule"), "alert_series", ["rule"])
    op.create_table(
        "alerts",
        sa.Column("id", _ROW_ID, autoincrement=True, nullable=False),
        _col("fingerprint", sa.String(32)),
        _col("rule", sa.String(128)),
        _col("severity", sa.String(16)),
        _col("labels", _JSON),
        _col("model", sa.Text(), True),
        _col("state", sa.String(16)),
        _col("summary", sa.Text()),
        *[_col(c, sa.Double(), True) for c in ("value", "threshold", "baseline", "window_s")],
        _col("evidence", _JSON),
        _col("started_at", sa.Double()),
        _col("fired_at", sa.Double()),
        _col("resolved_at", sa.Double(), True),
        _col("resolved_by", sa.Text(), True),
        _col("resolve_note", sa.Text(), True),
        _col("acknowledged_at", sa.Double(), True),
        _col("acknowledged_by", sa.Text(), True),
        _col("ack_note", sa.Text(), True),
        _col("notified_at", sa.Double(), True),
        _col("escalation_level", sa.Integer()),
        _col("channels", _JSON),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index(op.f("ix_alerts_fingerprint"), "alerts", ["fingerprint"])
    op.create_index(op.f("ix_alerts_state_fired_at"), "alerts", ["state", "fired_at"])
    op.create_index(op.f("ix_alerts_fired_at_id"), "alerts", ["fired_at", "id"])
    op.create_table(
        "alert_events",
        sa.Column("id", _ROW_ID, autoincrement=True, nullable=False),
        _col("alert_id", sa.BigInteger()),
        _col("at", sa.Double()),
        _col("kind", sa.String(32)),
        _col("who", sa.Text(), True),
        _col("note", sa.Text(), True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_events")),
    )
    op.create_index(op.f("ix_alert_events_alert_id"), "alert_events", ["alert_id"])
    op.create_table(
        "alert_silences",
        _col("id", sa.String(36)),
        _col("matchers", _JSON),
        _col("starts_at", sa.Double()),
        _col("ends_at", sa.Double()),
        _col("created_by", sa.Text()),
        _col("comment", sa.Text()),
        _col("created_at", sa.Double()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_silences")),
    )
    op.create_index(op.f("ix_alert_silences_ends_at"), "alert_silences", ["ends_at"])
    op.create_table(
        "alert_outbox",
        sa.Column("id", _ROW_ID, autoincrement=True, nullable=False),
        _col("idempotency_key", sa.String(64)),
        _col("channel", sa.String(128)),
        _col("group_key", sa.String(64)),
        _col("status", sa.String(16)),
        _col("payload", _JSON),
        _col("attempts", sa.Integer()),
        _col("next_attempt_at", sa.Double()),
        _col("lease_owner", sa.String(64), True),
        _col("lease_until", sa.Double(), True),
        _col("created_at", sa.Double()),
        _col("delivered_at", sa.Double(), True),
        _col("last_error", sa.Text(), True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_outbox")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_alert_outbox_idempotency_key")),
    )
    op.create_index(op.f("ix_alert_outbox_status_id"), "alert_outbox", ["status", "id"])
    op.create_table(
        "alert_leases",
        _col("name", sa.String(64)),
        _col("owner", sa.String(64)),
        _col("expires_at", sa.Double()),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_alert_leases")),
    )


def downgrade() -> None:
    """Drop the alerting tables."""
    for table in (
        "alert_leases", "alert_outbox", "alert_silences", "alert_events", "alerts",
        "alert_series", "alert_rules",
    ):  # fmt: skip
        op.drop_table(table)
