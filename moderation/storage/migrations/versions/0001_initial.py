"""The tool's own tables: runs, decisions (audit), comment state (memory), lease.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "moderation_runs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("fencing_token", sa.BigInteger),
        sa.Column("scheduled_for", sa.Float),
        sa.Column("model", sa.String(255)),
        sa.Column("model_digest", sa.String(128)),
        sa.Column("prompt_hash", sa.String(64)),
        sa.Column("considered", sa.Integer, nullable=False, server_default="0"),
        sa.Column("approved", sa.Integer, nullable=False, server_default="0"),
        sa.Column("held", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("skipped", sa.Integer, nullable=False, server_default="0"),
        sa.Column("exit_code", sa.Integer),
        sa.Column("error", sa.Text),
    )
    op.create_table(
        "moderation_decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("comment_id", sa.String(255), nullable=False),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.Column("label", sa.String(16)),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("raw_answer", sa.Text),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("model_digest", sa.String(128)),
        sa.Column("host", sa.String(255)),
        sa.Column("prompt_hash", sa.String(64), nullable=False),
        sa.Column("options", sa.Text),
        sa.Column("latency_ms", sa.Float),
        sa.Column("error", sa.Text),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_moderation_decisions_run_id", "moderation_decisions", ["run_id"])
    op.create_index("ix_moderation_decisions_comment_id", "moderation_decisions", ["comment_id"])
    op.create_table(
        "moderation_comment_state",
        sa.Column("comment_id", sa.String(255), primary_key=True),
        sa.Column("text_hash", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("label", sa.String(16)),
        sa.Column("model_digest", sa.String(128)),
        sa.Column("prompt_hash", sa.String(64), nullable=False),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "moderation_lease",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("token", sa.BigInteger, nullable=False),
        sa.Column("acquired_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("run_id", sa.String(36)),
    )


def downgrade() -> None:
    for table in (
        "moderation_lease",
        "moderation_comment_state",
        "moderation_decisions",
        "moderation_runs",
    ):
        op.drop_table(table)
