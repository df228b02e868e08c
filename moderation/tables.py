"""The tool's own tables. The site's comments table is never part of this metadata.

Migrations in ``moderation/migrations`` create exactly these; a test compares the two.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# One row per run: what was asked, of which model, and how it ended.
runs = sa.Table(
    "moderation_runs",
    metadata,
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

# The audit trail: one row per model answer that was acted on (or failed), and one per ruling
# of a human on the review page (`reviewer` set, outcome "approved" or "rejected").
decisions = sa.Table(
    "moderation_decisions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(36), nullable=False, index=True),
    sa.Column("comment_id", sa.String(255), nullable=False, index=True),
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
    sa.Column("reviewer", sa.String(255)),
)

# Decision memory: the latest state per comment, so a rerun knows in one indexed lookup what
# not to ask again (held with the same text, model and prompt; or out of attempts).
comment_state = sa.Table(
    "moderation_comment_state",
    metadata,
    sa.Column("comment_id", sa.String(255), primary_key=True),
    sa.Column("text_hash", sa.String(64), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("label", sa.String(16)),
    sa.Column("model_digest", sa.String(128)),
    sa.Column("prompt_hash", sa.String(64), nullable=False),
    sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # Set when a human ruled on the comment: the model is never asked about it again.
    sa.Column("reviewer", sa.String(255)),
)

# One row per lease name. `token` only ever grows: it fences off a holder that lost the lease.
leases = sa.Table(
    "moderation_lease",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(255), nullable=False),
    sa.Column("token", sa.BigInteger, nullable=False),
    sa.Column("acquired_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
    sa.Column("run_id", sa.String(36)),
)

OWN_TABLES = tuple(metadata.tables)
