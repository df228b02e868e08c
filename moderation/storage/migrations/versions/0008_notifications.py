"""Notifications: the last one of each kind, for the rate limit across processes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "moderation_notifications",
        sa.Column("kind", sa.String(32), primary_key=True),
        sa.Column("sent_at", sa.Double, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )


def downgrade() -> None:
    op.drop_table("moderation_notifications")
