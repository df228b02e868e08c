"""Decisions record how much of the comment the model read (whole, or in N windows).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Batch mode: SQLite adds a column in place but cannot drop one; batch mode rebuilds the
    # table there for the downgrade and is a plain ALTER TABLE elsewhere.
    with op.batch_alter_table("moderation_decisions") as batch:
        batch.add_column(sa.Column("coverage", sa.String(32)))


def downgrade() -> None:
    with op.batch_alter_table("moderation_decisions") as batch:
        batch.drop_column("coverage")
