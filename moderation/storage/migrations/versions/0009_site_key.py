"""One memory per site: a site key on memory, decisions, outcomes, runs and notifications.

Two sites can share one database (WordPress multisite's ``wp_comments`` and ``wp_2_comments``,
or two table prefixes); from here on everything the tool keeps names its site, and the lease
is one per site (its name is ``batch:<site key>``, hence the wider column).

Existing rows cannot be given their site here: a migration does not know the settings (it may
run from ``moderate db upgrade`` with none, or from a batch of another site), and guessing
would hand one site's memory to another for good. They keep the empty marker instead, and the
first batch (or outcomes or review) that runs for a site claims every marked row for its site
in one transaction (``moderation.storage.claim``): before this revision one database could
only serve one site without their memories mixing, and that is the site that runs first.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

KEYED = {
    # table: its old primary key
    "moderation_comment_state": ["comment_id"],
    "moderation_notifications": ["kind"],
}
SITE_ONLY = ("moderation_decisions", "moderation_outcomes", "moderation_runs")


def _site() -> sa.Column[str]:
    return sa.Column("site", sa.String(255), nullable=False, server_default="")


def _primary_key_name(table: str) -> str | None:
    return sa.inspect(op.get_bind()).get_pk_constraint(table).get("name")


def upgrade() -> None:
    for table in SITE_ONLY:
        op.add_column(table, _site())
    op.drop_index("ix_moderation_decisions_comment_id", "moderation_decisions")
    op.create_index(
        "ix_moderation_decisions_site_comment_id", "moderation_decisions", ["site", "comment_id"]
    )
    op.create_index("ix_moderation_runs_site_started_at", "moderation_runs", ["site", "started_at"])
    for table, old_key in KEYED.items():
        _rekey(table, ["site", *old_key], add_site=True)
    with op.batch_alter_table("moderation_lease") as batch:
        batch.alter_column(
            "name", type_=sa.String(320), existing_type=sa.String(64), existing_nullable=False
        )


def downgrade() -> None:
    # Only the unclaimed rows and those of one site fit the old keys: the others are dropped.
    with op.batch_alter_table("moderation_lease") as batch:
        batch.alter_column(
            "name", type_=sa.String(64), existing_type=sa.String(320), existing_nullable=False
        )
    for table, old_key in KEYED.items():
        # The derived table: MySQL cannot read the table it deletes from in a plain subquery.
        first = f"SELECT m FROM (SELECT MIN(site) AS m FROM {table}) AS first_site"
        op.execute(sa.text(f"DELETE FROM {table} WHERE site <> ({first})"))
        _rekey(table, old_key, add_site=False)
    op.drop_index("ix_moderation_runs_site_started_at", "moderation_runs")
    op.drop_index("ix_moderation_decisions_site_comment_id", "moderation_decisions")
    op.create_index("ix_moderation_decisions_comment_id", "moderation_decisions", ["comment_id"])
    for table in SITE_ONLY:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("site")


def _rekey(table: str, key: list[str], *, add_site: bool) -> None:
    """Give ``table`` a new primary key (SQLite copies the table: it cannot alter a key)."""
    name = _primary_key_name(table) or f"{table}_pkey"
    sqlite = op.get_bind().dialect.name == "sqlite"
    with warnings.catch_warnings(), op.batch_alter_table(table, recreate="auto") as batch:
        # SQLite's copy starts from the reflected old key, and SQLAlchemy warns that the new
        # one replaces it: which is the point.
        warnings.filterwarnings("ignore", "Table '_alembic_tmp_", sa.exc.SAWarning)
        if add_site:
            batch.add_column(_site())
        if not sqlite:
            batch.drop_constraint(name, type_="primary")
        batch.create_primary_key(f"{table}_pkey", key)
        if not add_site:
            batch.drop_column("site")
