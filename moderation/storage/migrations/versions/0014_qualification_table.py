"""Qualifications keep the floor and the threshold table they were chosen from, so that
`moderate qualify` shows them again from the stored result without asking anything.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("moderation_qualifications") as batch:
        batch.add_column(sa.Column("min_confidence", sa.Double))
        # JSON: one object per threshold (approved share and count, false-approval rate and
        # its 95% bound, missed-approval rate).
        batch.add_column(sa.Column("thresholds", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("moderation_qualifications") as batch:
        batch.drop_column("thresholds")
        batch.drop_column("min_confidence")
