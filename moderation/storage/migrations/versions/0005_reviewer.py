"""Rulings of a human reviewer: who ruled, on the audit row and in the decision memory.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("moderation_decisions", sa.Column("reviewer", sa.String(255)))
    op.add_column("moderation_comment_state", sa.Column("reviewer", sa.String(255)))


def downgrade() -> None:
    # Batch mode: SQLite can only drop a column by copying the table.
    for table in ("moderation_comment_state", "moderation_decisions"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("reviewer")
