"""A partial index of branch spans by (name, start_time): a workflow's runs in a window.

A workflow's runs are the traces holding its branch decisions (spans of kind ``branch`` named
``"<workflow>:<node>"``). Only branch spans are in the index, so ingest of every other span
pays nothing for it, and listing a window's runs reads one index range per decision point
instead of every span of the window.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BRANCH = sa.text("kind = 'branch'")


def upgrade() -> None:
    """Create the branch span index."""
    op.create_index(
        op.f("ix_spans_branch_name_start_time"), "spans", ["name", "start_time"],
        sqlite_where=_BRANCH, postgresql_where=_BRANCH,
    )  # fmt: skip


def downgrade() -> None:
    """Drop it."""
    op.drop_index(op.f("ix_spans_branch_name_start_time"), table_name="spans")
