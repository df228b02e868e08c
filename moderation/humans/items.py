"""What the review page shows of a comment waiting for a human, and of a page of them.

The author, post and posting time come from the site's own columns when it has them: the first
of each list below that the table has. A table with none of them shows none, not blanks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moderation.comment import read_comment, text_hash
from moderation.humans import reasons
from moderation.rules import RULE_PREFIX

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


@dataclass(frozen=True, slots=True)
class ReviewItem:
    key: str
    body: str
    text_hash: str
    author: str | None
    post: str | None
    created: datetime | None
    outcome: str  # the tool's: held or failed
    reason: str  # why it waits (see moderation.humans.reasons)
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
        return self.reason == reasons.UNQUALIFIED

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
    total: int  # waiting for the reason filtered on (all of them without a filter)
    counts: dict[str, int] = field(default_factory=dict)  # waiting, per reason
    reason: str | None = None  # the filter
    # Why the model may not approve, when comments wait for that (the latest such error).
    untrusted: str | None = None

    @property
    def has_next(self) -> bool:
        return (self.number + 1) * self.size < self.total

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def waiting(self) -> int:
        """All the comments waiting, whatever the filter."""
        return sum(self.counts.values())


def make_item(fields: Sequence[Any], decision: dict[str, Any]) -> ReviewItem:
    """A comment's item from (id, body, author, post, created, outcome, text hash, reason) and
    the tool's latest decision on it."""
    comment_id, value, author, post, created, outcome, state_hash, reason = fields
    # Read as the batch reads it: a value that is not text (a BLOB) shows as its repr.
    body = read_comment(comment_id, value).body
    return ReviewItem(
        key=str(comment_id),
        body=body,
        text_hash=text_hash(body),
        author=shown(author),
        post=shown(post),
        created=as_datetime(created),
        outcome=outcome,
        reason=reason,
        label=decision.get("label"),
        confidence=decision.get("confidence"),
        error=decision.get("error"),
        raw_answer=decision.get("raw_answer"),
        decided_at=decision.get("decided_at"),
        coverage=decision.get("coverage"),
        edited=state_hash != text_hash(body),
    )


def shown(value: Any) -> str | None:
    """A column's value as shown beside a comment; None for nothing worth showing."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


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
