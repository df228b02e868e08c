"""Answers shared by copies of a text: text hashes indexed per site, and the source named.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("moderation_decisions") as batch:
        batch.add_column(sa.Column("answer_of", sa.String(255)))
    op.create_index(
        "ix_moderation_decisions_site_text_hash",
        "moderation_decisions",
        ["site", "text_hash"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_moderation_decisions_site_text_hash", table_name="moderation_decisions")
    with op.batch_alter_table("moderation_decisions") as batch:
        batch.drop_column("answer_of")
