"""The comments waiting for a human, and a human's ruling on one of them.

No web code here: the review page calls these, and so could anything else. Listing reads the
site's table joined to the decision memory; a ruling goes through the same conditional UPDATE
as a batch's approvals, so it lands only on the row the human saw, still pending, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from moderation.comment import Comment, read_comment, text_hash
from moderation.policy import UNTRUSTED_REASONS
from moderation.rules import RULE_PREFIX
from moderation.site.rows import PENDING_STATE, SiteStates
from moderation.site.table import CommentsTable
from moderation.storage import audit
from moderation.storage.engines import read_transaction, run_write
from moderation.storage.tables import comment_state, decisions
from moderation.vocabulary import Outcome

# Columns that common comment systems use for the author and the posting time; the first one a
# table has is shown. A table with none of them shows neither.
AUTHOR_COLUMNS = ("author", "author_name", "comment_author", "user_name", "username")
CREATED_COLUMNS = (
    "created_at",
    "created",
    "comment_date_gmt",
    "comment_date",
    "submit_date",
    "creationDate",
    "posted_at",
    "date",
)
WAITING = (Outcome.HELD, Outcome.FAILED)


@dataclass(frozen=True, slots=True)
class ReviewItem:
    key: str
    body: str
    text_hash: str
    author: str | None
    created: datetime | None
    outcome: str  # the tool's: held or failed
    label: str | None
    confidence: float | None
    error: str | None
    raw_answer: str | None
    decided_at: datetime | None
    coverage: str | None
    edited: bool  # the text changed since the tool's decision

    @property
    def untrusted(self) -> bool:
        """Held because the model may not approve at all, whatever it answered."""
        return (self.error or "").startswith(UNTRUSTED_REASONS)

    @property
    def rule_reason(self) -> str | None:
        """Why a rule held the comment before the model was asked ("2 links >= 2"), or None."""
        error = self.error or ""
        return error.removeprefix(RULE_PREFIX) if error.startswith(RULE_PREFIX) else None


@dataclass(frozen=True, slots=True)
class ReviewPage:
    items: list[ReviewItem]
    number: int
    size: int
    total: int

    @property
    def has_next(self) -> bool:
        return (self.number + 1) * self.size < self.total


@dataclass(frozen=True, slots=True)
class Ruling:
    """What happened to a ruling: written, or why not (``change`` says what changed)."""

    written: bool
    change: str | None = None


class ReviewQueue:
    def __init__(self, engine: Engine, comments: CommentsTable, session_id: str) -> None:
        self.engine = engine
        self.comments = comments
        self.session_id = session_id
        columns = comments.table.c
        self.author = next((columns[n] for n in AUTHOR_COLUMNS if n in columns), None)
        self.created = next((columns[n] for n in CREATED_COLUMNS if n in columns), None)

    def _waiting(self) -> sa.Select[Any]:
        key = sa.cast(self.comments.id, sa.String(255))
        return (
            sa.select(
                self.comments.id,
                self.comments.body,
                self.author if self.author is not None else sa.null(),
                self.created if self.created is not None else sa.null(),
                comment_state.c.outcome,
                comment_state.c.text_hash,
            )
            .join(
                comment_state,
                sa.and_(
                    comment_state.c.site == self.comments.site,
                    comment_state.c.comment_id == key,
                ),
            )
            .where(self.comments.is_pending, comment_state.c.outcome.in_(WAITING))
        )

    def page(self, number: int, size: int) -> ReviewPage:
        """One page of the comments the tool held or failed that are still pending, newest first."""
        order = [self.comments.id.desc()]
        if self.created is not None:
            order.insert(0, self.created.desc())
        query = self._waiting().order_by(*order).limit(size).offset(number * size)
        with read_transaction(self.engine) as conn:
            total = conn.execute(
                sa.select(sa.func.count()).select_from(self._waiting().subquery())
            ).scalar_one()
            rows = conn.execute(query).all()
            latest = _latest_decisions(conn, self.comments.site, [str(row[0]) for row in rows])
        items = []
        for comment_id, value, author, created, outcome, state_hash in rows:
            # Read as the batch reads it: a value that is not text (a BLOB) shows as its repr.
            body = read_comment(comment_id, value).body
            decision = latest.get(str(comment_id), {})
            items.append(
                ReviewItem(
                    key=str(comment_id),
                    body=body,
                    text_hash=text_hash(body),
                    author=None if author is None else str(author),
                    created=as_datetime(created),
                    outcome=outcome,
                    label=decision.get("label"),
                    confidence=decision.get("confidence"),
                    error=decision.get("error"),
                    raw_answer=decision.get("raw_answer"),
                    decided_at=decision.get("decided_at"),
                    coverage=decision.get("coverage"),
                    edited=state_hash != text_hash(body),
                )
            )
        return ReviewPage(items, number, size, total)

    def rule(self, key: str, seen_hash: str, outcome: str, reviewer: str) -> Ruling:
        """Approve or reject one comment, only if it is as the reviewer saw it."""
        try:
            comment_id = self.comments.parse_id(key)
        except ValueError:
            return Ruling(False, "no such comment")
        return run_write(
            self.engine, lambda conn: self._rule(conn, comment_id, seen_hash, outcome, reviewer)
        )

    def _rule(
        self, conn: Connection, comment_id: Any, seen_hash: str, outcome: str, reviewer: str
    ) -> Ruling:
        states = SiteStates(self.comments)
        row = states.lookup(conn, [str(comment_id)]).get(str(comment_id))
        if row is None:
            return Ruling(False, "it was deleted")
        if row.state != PENDING_STATE:
            return Ruling(False, states.what_happened(row))
        if text_hash(row.body) != seen_hash:
            return Ruling(False, "its text was edited since the page was shown")
        comment = Comment(comment_id, row.body)
        state = conn.execute(
            sa.select(comment_state.c.outcome).where(
                comment_state.c.site == self.comments.site,
                comment_state.c.comment_id == comment.key,
            )
        ).scalar()
        if state not in WAITING:
            return Ruling(False, "it is not waiting for a human")
        update = self.comments.approve if outcome == Outcome.APPROVED else self.comments.reject
        if not update(conn, [comment]):
            return Ruling(False, "it changed while the ruling was written")
        audit.record_ruling(
            conn, self.session_id, comment, outcome, reviewer, site=self.comments.site
        )
        return Ruling(True)


def _latest_decisions(conn: Connection, site: str, keys: list[str]) -> dict[str, dict[str, Any]]:
    """The tool's latest decision row for each of these comments (optional columns included)."""
    if not keys:
        return {}
    latest = (
        sa.select(sa.func.max(decisions.c.id))
        .where(
            decisions.c.site == site,
            decisions.c.comment_id.in_(keys),
            decisions.c.reviewer.is_(None),
        )
        .group_by(decisions.c.comment_id)
    )
    wanted = ["comment_id", "label", "error", "raw_answer", "decided_at"]
    # Columns added by later revisions are shown when the declared tables have them.
    wanted += [name for name in ("confidence", "coverage") if name in decisions.c]
    query = sa.select(*(decisions.c[name] for name in wanted)).where(decisions.c.id.in_(latest))
    return {row.comment_id: dict(row._mapping) for row in conn.execute(query)}


def as_datetime(value: Any) -> datetime | None:
    """A posting time as an aware datetime: datetimes, epoch seconds and ISO strings."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str):
        try:
            return as_datetime(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None
