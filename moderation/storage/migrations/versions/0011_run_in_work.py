"""The comments a run was working on, for the quarantine of a comment that stops batches.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("moderation_runs") as batch:
        batch.add_column(sa.Column("in_work", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("moderation_runs") as batch:
        batch.drop_column("in_work")
