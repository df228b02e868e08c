"""The reversal brake's running figures, per site, model, prompt, hour and minute, filled from
the decisions and outcomes already recorded.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08

What each existing decision counts for is worked out as ``moderation.storage.brake`` does, from
the rows alone: the latest tool decision on a comment, if it is an approval, counts as
approved, and as reversed when its recorded outcome (else the latest reviewer's ruling after
it) says a human took it back. No decision is known yet to be in a state the comment system set
by itself: the batches' re-reading of their approvals (and `moderate outcomes`) finds those.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

MYSQL: dict[str, Any] = {
    "mysql_engine": "InnoDB",
    "mysql_charset": "utf8mb4",
    "mysql_collate": "utf8mb4_bin",
}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SPANS = (3600, 60)  # an hour, a minute
INSERT_EVERY = 5000


def upgrade() -> None:
    figures = op.create_table(
        "moderation_brake_figures",
        sa.Column("site", sa.String(255), primary_key=True),
        sa.Column("model_digest", sa.String(128), primary_key=True),
        sa.Column("prompt_hash", sa.String(64), primary_key=True),
        sa.Column("seconds", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("starts_at", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("approved", sa.Integer, nullable=False),
        sa.Column("reversed", sa.Integer, nullable=False),
        sa.Column("first_id", sa.Integer, nullable=False),
        sa.Column("last_id", sa.Integer, nullable=False),
        **MYSQL,
    )
    op.create_table(
        "moderation_brake_marks",
        sa.Column("decision_id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("site", sa.String(255), nullable=False),
        **MYSQL,
    )
    op.create_table(
        "moderation_brake_sites",
        sa.Column("site", sa.String(255), primary_key=True),
        sa.Column("swept_after", sa.Integer, nullable=False, server_default="0"),
        **MYSQL,
    )
    assert figures is not None
    _fill(op.get_bind(), figures)


def _fill(conn: Any, figures: sa.Table) -> None:
    decisions = sa.table(
        "moderation_decisions",
        sa.column("id"),
        sa.column("site"),
        sa.column("comment_id"),
        sa.column("outcome"),
        sa.column("reviewer"),
        sa.column("model_digest"),
        sa.column("prompt_hash"),
        sa.column("decided_at", sa.DateTime()),
    )
    outcomes = sa.table("moderation_outcomes", sa.column("decision_id"), sa.column("outcome"))
    later = decisions.alias("later")
    ruling = decisions.alias("ruling")
    replaced = (
        sa.select(sa.literal(1))
        .where(
            later.c.site == decisions.c.site,
            later.c.comment_id == decisions.c.comment_id,
            later.c.id > decisions.c.id,
            later.c.reviewer.is_(None),
            later.c.outcome.in_(("approved", "held", "failed")),
        )
        .exists()
    )
    latest_ruling = (
        sa.select(ruling.c.outcome)
        .where(
            ruling.c.site == decisions.c.site,
            ruling.c.comment_id == decisions.c.comment_id,
            ruling.c.id > decisions.c.id,
            ruling.c.reviewer.is_not(None),
            ruling.c.outcome.in_(("approved", "rejected")),
        )
        .order_by(ruling.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    recorded = (
        sa.select(outcomes.c.outcome)
        .where(outcomes.c.decision_id == decisions.c.id)
        .scalar_subquery()
    )
    query = sa.select(
        decisions.c.id,
        decisions.c.site,
        decisions.c.model_digest,
        decisions.c.prompt_hash,
        decisions.c.decided_at,
        recorded,
        latest_ruling,
    ).where(decisions.c.reviewer.is_(None), decisions.c.outcome == "approved", ~replaced)
    buckets: dict[tuple[str, str, str, int, int], list[int]] = {}
    for decision_id, site, digest, prompt, decided_at, known, ruled in conn.execute(query):
        if known is None and ruled is not None:
            known = "kept" if ruled == "approved" else "reversed"
        at = _micros(decided_at)
        for span in SPANS:
            starts_at = at // (span * 1_000_000) * span
            key = (site, digest or "", prompt, span, starts_at)
            bucket = buckets.setdefault(key, [0, 0, decision_id, 0])
            bucket[0] += 1
            bucket[1] += known == "reversed"
            bucket[2], bucket[3] = min(bucket[2], decision_id), max(bucket[3], decision_id)
    rows = [
        {
            "site": site,
            "model_digest": digest,
            "prompt_hash": prompt,
            "seconds": span,
            "starts_at": starts_at,
            "approved": approved,
            "reversed": reversed_,
            "first_id": first,
            "last_id": last,
        }
        for (site, digest, prompt, span, starts_at), bucket in buckets.items()
        for approved, reversed_, first, last in [bucket]
    ]
    for start in range(0, len(rows), INSERT_EVERY):
        conn.execute(sa.insert(figures), rows[start : start + INSERT_EVERY])


def _micros(value: Any) -> int:
    """A stored time as microseconds since the epoch (naive times are UTC; SQLite gives text)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return int((moment - EPOCH) // timedelta(microseconds=1))


def downgrade() -> None:
    op.drop_table("moderation_brake_sites")
    op.drop_table("moderation_brake_marks")
    op.drop_table("moderation_brake_figures")
