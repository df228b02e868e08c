"""Qualifications: which model and prompt has proven itself on labelled fixtures, and how well.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "moderation_qualifications",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("model_digest", sa.String(128)),
        sa.Column("prompt_hash", sa.String(64), nullable=False),
        sa.Column("fixtures_hash", sa.String(64), nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("n_positive", sa.Integer, nullable=False),
        sa.Column("n_neutral", sa.Integer, nullable=False),
        sa.Column("n_negative", sa.Integer, nullable=False),
        sa.Column("n_approve", sa.Integer, nullable=False),
        sa.Column("n_hold", sa.Integer, nullable=False),
        sa.Column("max_false_approval", sa.Double, nullable=False),
        sa.Column("threshold", sa.Double),
        sa.Column("false_approval_rate", sa.Double),
        sa.Column("false_approval_bound", sa.Double),
        sa.Column("auto_approval_share", sa.Double),
        sa.Column("missed_approval_rate", sa.Double),
        sa.Column("best_false_approval_rate", sa.Double),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("seconds", sa.Double, nullable=False),
        sa.Column(
            "qualified_at",
            sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
            nullable=False,
        ),
        mysql_engine="InnoDB",
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",
    )
    op.create_index("ix_moderation_qualifications_key", "moderation_qualifications", ["key"])


def downgrade() -> None:
    op.drop_table("moderation_qualifications")
