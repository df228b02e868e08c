"""Confidence of each answer, and the approval threshold an outcome was decided under.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Double, not Float: MySQL's FLOAT is single precision.
    with op.batch_alter_table("moderation_decisions") as batch:
        batch.add_column(sa.Column("confidence", sa.Double))
    with op.batch_alter_table("moderation_comment_state") as batch:
        batch.add_column(sa.Column("min_confidence", sa.Double))


def downgrade() -> None:
    with op.batch_alter_table("moderation_comment_state") as batch:
        batch.drop_column("min_confidence")
    with op.batch_alter_table("moderation_decisions") as batch:
        batch.drop_column("confidence")
