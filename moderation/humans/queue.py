"""The comments waiting for a human, and a human's ruling on one of them.

No web code here: the review page calls these, and so could anything else. Listing reads the
site's table joined to the decision memory; a ruling goes through the same conditional UPDATE
as a batch's approvals, so it lands only on the row the human saw, still pending, unchanged.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from moderation.comment import Comment, text_hash
from moderation.humans import reasons
from moderation.humans.api_ruling import rule_through_api
from moderation.humans.items import (
    AUTHOR_COLUMNS,
    CREATED_COLUMNS,
    POST_COLUMNS,
    ReviewPage,
    make_item,
)
from moderation.humans.items import as_datetime as as_datetime  # for the batch's notices
from moderation.site.protocol import Site
from moderation.site.rows import PENDING_STATE, what_happened
from moderation.site.table import CommentsTable
from moderation.storage import audit
from moderation.storage.engines import read_transaction, run_write
from moderation.storage.tables import comment_state, decisions
from moderation.vocabulary import Outcome

WAITING = (Outcome.HELD, Outcome.FAILED)


@dataclass(frozen=True, slots=True)
class Ruling:
    """What happened to a ruling: written, or why not (``change`` says what changed)."""

    written: bool
    change: str | None = None
    # Written in the tool's memory only: the site has no rejected state to write.
    site_unchanged: bool = False


def _latest_decision() -> sa.ScalarSelect[Any]:
    """The id of the tool's latest decision on the memory row's comment (not a ruling)."""
    earlier = decisions.alias("earlier")
    return (
        sa.select(sa.func.max(earlier.c.id))
        .where(
            earlier.c.site == comment_state.c.site,
            earlier.c.comment_id == comment_state.c.comment_id,
            earlier.c.reviewer.is_(None),
        )
        .correlate(comment_state)
        .scalar_subquery()
    )


# The memory of each comment joined to the tool's latest decision on it, and why it waits.
_remembered = comment_state.outerjoin(decisions, decisions.c.id == _latest_decision())
_why = reasons.reason_column(comment_state.c.outcome, decisions.c.label, decisions.c.error)
_DECISION = (
    decisions.c.label,
    decisions.c.confidence,
    decisions.c.error,
    decisions.c.raw_answer,
    decisions.c.decided_at,
    decisions.c.coverage,
)


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

    def _waiting(self, *columns: sa.ColumnElement[Any]) -> sa.Select[Any]:
        """``columns`` of the site's pending comments the tool held or failed."""
        key = sa.cast(self.table.id, sa.String(255))
        joined = self.table.table.join(
            _remembered,
            sa.and_(comment_state.c.site == self.comments.site, comment_state.c.comment_id == key),
        )
        return (
            sa.select(*columns)
            .select_from(joined)
            .where(self.table.is_pending, comment_state.c.outcome.in_(WAITING))
        )

    def page(self, number: int, size: int, reason: str | None = None) -> ReviewPage:
        """One page of the comments the tool held or failed that are still pending, newest
        first, those waiting for ``reason`` only when one is given; with the count of each
        reason. The database does the filtering, counting and paging: a page reads ``size``
        comments, however many wait."""
        if not isinstance(self.comments, CommentsTable):
            return self._page_elsewhere(number, size, reason)
        order = [self.table.id.desc()]
        if self.created is not None:
            order.insert(0, self.created.desc())
        query = self._waiting(
            self.table.id,
            self.table.body,
            _or_null(self.author),
            _or_null(self.post),
            _or_null(self.created),
            comment_state.c.outcome,
            comment_state.c.text_hash,
            _why,
            *_DECISION,
        )
        if reason is not None:
            query = query.where(_why == reason)
        query = query.order_by(*order).limit(size).offset(number * size)
        reasons_only = self._waiting(_why.label("reason")).subquery()
        with read_transaction(self.engine) as conn:
            rows = conn.execute(query).all()
            counted = conn.execute(
                sa.select(reasons_only.c.reason, sa.func.count()).group_by(reasons_only.c.reason)
            ).all()
            counts = {name: int(n) for name, n in counted}
            untrusted = None
            if counts.get(reasons.UNQUALIFIED):
                untrusted = conn.execute(
                    self._waiting(decisions.c.error)
                    .where(_why == reasons.UNQUALIFIED)
                    .order_by(decisions.c.id.desc())
                    .limit(1)
                ).scalar()
        items = [
            make_item(row[:8], dict(zip(_DECISION_NAMES, row[8:], strict=True))) for row in rows
        ]
        total = counts.get(reason, 0) if reason is not None else sum(counts.values())
        return ReviewPage(items, number, size, total, counts, reason, untrusted)

    def _page_elsewhere(self, number: int, size: int, reason: str | None) -> ReviewPage:
        """The same page for a site outside the database (an API): the tool's waiting rows,
        then which of them the site still holds as pending, newest (highest id) first."""
        query = (
            sa.select(
                comment_state.c.comment_id,
                comment_state.c.outcome,
                comment_state.c.text_hash,
                _why,
                decisions.c.error,
            )
            .select_from(_remembered)
            .where(
                comment_state.c.site == self.comments.site,
                comment_state.c.outcome.in_(WAITING),
            )
        )
        with read_transaction(self.engine) as conn:
            waiting = conn.execute(query).all()
        pending: list[tuple[Any, ...]] = []
        for start in range(0, len(waiting), 500):
            chunk = waiting[start : start + 500]
            with read_transaction(self.engine) as conn:
                now = self.comments.current_rows(conn, [row[0] for row in chunk])
            for key, outcome, state_hash, why, error in chunk:
                row = now.get(key)
                if row is not None and row.state == PENDING_STATE:
                    pending.append((key, row.body, outcome, state_hash, why, error))
        counts = dict(Counter(row[4] for row in pending))
        untrusted = next((row[5] for row in pending if row[4] == reasons.UNQUALIFIED), None)
        if reason is not None:
            pending = [row for row in pending if row[4] == reason]
        pending.sort(key=lambda row: _id_order(row[0]), reverse=True)
        rows = pending[number * size : (number + 1) * size]
        with read_transaction(self.engine) as conn:
            latest = _latest_decisions(conn, self.comments.site, [str(row[0]) for row in rows])
        items = [
            make_item((key, body, None, None, None, outcome, state_hash, why), latest.get(key, {}))
            for key, body, outcome, state_hash, why, _ in rows
        ]
        return ReviewPage(items, number, size, len(pending), counts, reason, untrusted)

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


_DECISION_NAMES = tuple(column.name for column in _DECISION)


def _or_null(column: sa.ColumnElement[Any] | None) -> sa.ColumnElement[Any]:
    return column if column is not None else sa.null()


def _id_order(key: str) -> tuple[int, int | str]:
    """Integer ids in number order (an API's ids are integers), any others after, as text."""
    return (1, int(key)) if key.isdigit() else (0, key)


def _latest_decisions(conn: Connection, site: str, keys: list[str]) -> dict[str, dict[str, Any]]:
    """The tool's latest decision row for each of these comments."""
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
    query = sa.select(decisions.c.comment_id, *_DECISION).where(decisions.c.id.in_(latest))
    return {row.comment_id: dict(row._mapping) for row in conn.execute(query)}
