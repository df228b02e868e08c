"""What humans did after the tool: moderation_outcomes, and who ruled on a decision.

Revision ID: 0005
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The reviewer column is shared with the review page's own migration: add it only once,
    # whichever of the two runs first.
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("moderation_decisions")}
    if "reviewer" not in columns:
        with op.batch_alter_table("moderation_decisions") as batch:
            batch.add_column(sa.Column("reviewer", sa.String(255)))
    op.create_table(
        "moderation_outcomes",
        sa.Column("decision_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("comment_id", sa.String(255), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_moderation_outcomes_comment_id", "moderation_outcomes", ["comment_id"])


def downgrade() -> None:
    op.drop_table("moderation_outcomes")
    with op.batch_alter_table("moderation_decisions") as batch:
        batch.drop_column("reviewer")
