"""The comments waiting for a human, and a human's ruling on one of them.

No web code here: the review page calls these, and so could anything else. Listing reads the
site's table joined to the decision memory; a ruling goes through the same conditional UPDATE
as a batch's approvals, so it lands only on the row the human saw, still pending, unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from moderation.comment import Comment, read_comment, text_hash
from moderation.humans.api_ruling import rule_through_api
from moderation.policy import UNTRUSTED_REASONS
from moderation.rules import RULE_PREFIX
from moderation.site.protocol import Site
from moderation.site.rows import PENDING_STATE, what_happened
from moderation.site.table import CommentsTable
from moderation.storage import audit
from moderation.storage.engines import read_transaction, run_write
from moderation.storage.tables import comment_state, decisions
from moderation.vocabulary import Outcome

# Columns that common comment systems use for the author, the post a comment is on and the
# posting time; the first one a table has is shown. A table with none of them shows nothing.
AUTHOR_COLUMNS = ("author", "author_name", "comment_author", "user_name", "username")
POST_COLUMNS = (
    "post_id",
    "comment_post_ID",
    "article_id",
    "page_id",
    "thread_id",
    "tid",
    "object_pk",
    "path",
    "uri",
    "url",
)
CREATED_COLUMNS = (
    "created_at",
    "created",
    "comment_date_gmt",
    "comment_date",
    "submit_date",
    "creationDate",
    "inserted_at",
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
    post: str | None
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
    # Written in the tool's memory only: the site has no rejected state to write.
    site_unchanged: bool = False


class ReviewQueue:
    def __init__(self, engine: Engine, comments: Site, session_id: str) -> None:
        self.engine = engine
        self.comments = comments
        self.session_id = session_id
        self.author = self.post = self.created = None
        if isinstance(comments, CommentsTable):
            columns = comments.table.c
            self.author = next((columns[n] for n in AUTHOR_COLUMNS if n in columns), None)
            self.post = next((columns[n] for n in POST_COLUMNS if n in columns), None)
            self.created = next((columns[n] for n in CREATED_COLUMNS if n in columns), None)

    @property
    def table(self) -> CommentsTable:
        assert isinstance(self.comments, CommentsTable)
        return self.comments

    def _waiting(self) -> sa.Select[Any]:
        key = sa.cast(self.table.id, sa.String(255))
        return (
            sa.select(
                self.table.id,
                self.table.body,
                self.author if self.author is not None else sa.null(),
                self.post if self.post is not None else sa.null(),
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
            .where(self.table.is_pending, comment_state.c.outcome.in_(WAITING))
        )

    def page(self, number: int, size: int) -> ReviewPage:
        """One page of the comments the tool held or failed that are still pending, newest first."""
        if not isinstance(self.comments, CommentsTable):
            return self._page_elsewhere(number, size)
        order = [self.table.id.desc()]
        if self.created is not None:
            order.insert(0, self.created.desc())
        query = self._waiting().order_by(*order).limit(size).offset(number * size)
        with read_transaction(self.engine) as conn:
            total = conn.execute(
                sa.select(sa.func.count()).select_from(self._waiting().subquery())
            ).scalar_one()
            rows = conn.execute(query).all()
            latest = _latest_decisions(conn, self.comments.site, [str(row[0]) for row in rows])
        return ReviewPage(self._items(rows, latest), number, size, total)

    def _page_elsewhere(self, number: int, size: int) -> ReviewPage:
        """The same page for a site outside the database (an API): the tool's waiting rows,
        then which of them the site still holds as pending, newest (highest id) first."""
        query = sa.select(
            comment_state.c.comment_id, comment_state.c.outcome, comment_state.c.text_hash
        ).where(comment_state.c.site == self.comments.site, comment_state.c.outcome.in_(WAITING))
        with read_transaction(self.engine) as conn:
            waiting = conn.execute(query).all()
        pending: list[tuple[Any, ...]] = []
        for start in range(0, len(waiting), 500):
            chunk = waiting[start : start + 500]
            with read_transaction(self.engine) as conn:
                now = self.comments.current_rows(conn, [row[0] for row in chunk])
            for key, outcome, state_hash in chunk:
                row = now.get(key)
                if row is not None and row.state == PENDING_STATE:
                    pending.append((key, row.body, None, None, None, outcome, state_hash))
        pending.sort(key=lambda row: _id_order(row[0]), reverse=True)
        rows = pending[number * size : (number + 1) * size]
        with read_transaction(self.engine) as conn:
            latest = _latest_decisions(conn, self.comments.site, [str(row[0]) for row in rows])
        return ReviewPage(self._items(rows, latest), number, size, len(pending))

    def _items(self, rows: Sequence[Any], latest: dict[str, dict[str, Any]]) -> list[ReviewItem]:
        items = []
        for comment_id, value, author, post, created, outcome, state_hash in rows:
            # Read as the batch reads it: a value that is not text (a BLOB) shows as its repr.
            body = read_comment(comment_id, value).body
            decision = latest.get(str(comment_id), {})
            items.append(
                ReviewItem(
                    key=str(comment_id),
                    body=body,
                    text_hash=text_hash(body),
                    author=_shown(author),
                    post=_shown(post),
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
        return items

    def rule(self, key: str, seen_hash: str, outcome: str, reviewer: str) -> Ruling:
        """Approve or reject one comment, only if it is as the reviewer saw it."""
        try:
            comment_id = self.comments.parse_id(key)
        except ValueError:
            return Ruling(False, "no such comment")
        if not self.comments.writes_in_transaction:  # an API: no lock held over HTTP
            change = rule_through_api(
                self.engine,
                self.comments,
                self.session_id,
                comment_id,
                seen_hash,
                outcome,
                reviewer,
            )
            return Ruling(change is None, change)
        return run_write(
            self.engine, lambda conn: self._rule(conn, comment_id, seen_hash, outcome, reviewer)
        )

    def _rule(
        self, conn: Connection, comment_id: Any, seen_hash: str, outcome: str, reviewer: str
    ) -> Ruling:
        row = self.comments.current_rows(conn, [str(comment_id)]).get(str(comment_id))
        if row is None:
            return Ruling(False, "it was deleted")
        if row.state != PENDING_STATE:
            return Ruling(False, what_happened(row))
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
        if outcome == Outcome.REJECTED and not self.comments.can_reject:
            # No value of the site's columns means "rejected" (a boolean "approved"): the
            # ruling is the tool's memory alone, which takes the comment off the queue and
            # keeps every later batch away from it. The site's row stays as it is.
            audit.record_ruling(
                conn, self.session_id, comment, outcome, reviewer, site=self.comments.site
            )
            return Ruling(True, site_unchanged=True)
        update = self.comments.approve if outcome == Outcome.APPROVED else self.comments.reject
        if not update(conn, [comment]):
            return Ruling(False, "it changed while the ruling was written")
        audit.record_ruling(
            conn, self.session_id, comment, outcome, reviewer, site=self.comments.site
        )
        return Ruling(True)


def _shown(value: Any) -> str | None:
    """A column's value as shown beside a comment; None for nothing worth showing."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _id_order(key: str) -> tuple[int, int | str]:
    """Integer ids in number order (an API's ids are integers), any others after, as text."""
    return (1, int(key)) if key.isdigit() else (0, key)


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
