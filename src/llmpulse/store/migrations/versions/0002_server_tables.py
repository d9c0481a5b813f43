"""Server tables: API keys and the model catalog; an index that pages one trace's spans.

* ``api_keys``: one row per key, the secret stored only as its SHA-256 (the key is shown once).
* ``models``: the model catalog (provider, per-token prices that feed the price table used for
  cost, context length, max tokens, type, active).
* ``ix_spans_trace_id_start_time_id``: a trace's spans in start order without sorting the whole
  trace, so a page of a 30,000-span trace reads one index range.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PRICES = ("input", "output", "cache_read", "cache_write", "reasoning")


def upgrade() -> None:
    """Create ``api_keys`` and ``models`` and the span paging index."""
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("scopes", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("revoked_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_api_keys")),
    )
    op.create_table(
        "models",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("provider", sa.Text(), nullable=True),
        *[sa.Column(f"{p}_price_per_token", sa.Double(), nullable=True) for p in _PRICES],
        sa.Column("context_length", sa.BigInteger(), nullable=True),
        sa.Column("max_tokens", sa.BigInteger(), nullable=True),
        sa.Column("model_type", sa.String(32), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_models")),
    )
    op.create_index(
        op.f("ix_spans_trace_id_start_time_id"), "spans", ["trace_id", "start_time", "id"]
    )


def downgrade() -> None:
    """Drop the server tables and the paging index."""
    op.drop_index(op.f("ix_spans_trace_id_start_time_id"), table_name="spans")
    op.drop_table("models")
    op.drop_table("api_keys")
