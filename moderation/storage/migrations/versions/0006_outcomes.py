"""What humans did after the tool: the first human outcome seen for each tool decision.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "moderation_outcomes",
        sa.Column("decision_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("comment_id", sa.String(255), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column(
            "seen_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    op.create_index("ix_moderation_outcomes_comment_id", "moderation_outcomes", ["comment_id"])


def downgrade() -> None:
    op.drop_table("moderation_outcomes")
