"""Reading the current state of given comments in the site's table, read-only.

What a human did after the tool shows only in the site's own table: the comment is approved,
pending again, in one of the system's rejected states (WordPress ``trash``/``spam``, Isso mode 4,
Commento ``flagged``), flagged by a removed column (django ``is_removed``), or gone. Nothing here
writes to the site's table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from moderation.comment import read_comment, text_hash
from moderation.site.table import CommentsTable

APPROVED_STATE, PENDING_STATE, REJECTED_STATE, OTHER_STATE, SYSTEM_STATE = (
    "approved",
    "pending",
    "rejected",
    "other",
    "system",  # set by the comment system itself (WordPress `post-trashed`), not by a human
)


@dataclass(frozen=True, slots=True)
class SiteRow:
    """A comment as the site holds it now."""

    key: str
    body: str
    state: str  # APPROVED_STATE, PENDING_STATE, REJECTED_STATE, SYSTEM_STATE or OTHER_STATE
    status: Any = None  # the status column's value, as the site wrote it
    removed: bool = False  # flagged by the removed column (django's is_removed)

    @property
    def text_hash(self) -> str:
        return text_hash(self.body)


class SiteStates:
    """Looks up comments by the keys the tool stored and names their state."""

    def __init__(self, comments: CommentsTable) -> None:
        self.comments = comments
        # Coerced to the status column's type, and checked against it, by CommentsTable.
        self.rejected_values = frozenset(comments.rejected_values)
        self.system_values = frozenset(comments.system_values)

    def state_of(self, status: Any, removed: Any) -> str:
        if removed:
            return REJECTED_STATE
        if status is None:
            return OTHER_STATE
        if status == self.comments.approved_value:
            return APPROVED_STATE
        if status == self.comments.pending_value:
            return PENDING_STATE
        if status in self.system_values:
            return SYSTEM_STATE
        if status in self.rejected_values:
            return REJECTED_STATE
        return OTHER_STATE

    def what_happened(self, row: SiteRow) -> str:
        return what_happened(row)

    def site_id(self, key: str) -> Any:
        """The site's id value for a stored key ('42' -> 42 for an INTEGER key), or None."""
        try:
            return self.comments.parse_id(key)
        except ValueError:
            return None

    def lookup(self, conn: Connection, keys: Sequence[str]) -> dict[str, SiteRow]:
        """The rows that still exist among ``keys``, in one indexed query."""
        wanted = [value for value in map(self.site_id, keys) if value is not None]
        if not wanted:
            return {}
        c = self.comments
        columns: list[Any] = [c.id, c.body, c.approved]
        if c.removed is not None:
            columns.append(c.removed)
        found: dict[str, SiteRow] = {}
        for row in conn.execute(sa.select(*columns).where(c.id.in_(wanted))):
            removed = bool(row[3]) if c.removed is not None else False
            # Read as the batch reads it, so the text hash compares with the decision's.
            comment = read_comment(row[0], row[1])
            state = self.state_of(row[2], removed)
            found[comment.key] = SiteRow(comment.key, comment.body, state, row[2], removed)
        return found


def what_happened(row: SiteRow) -> str:
    """Why a comment is no longer pending, in words for the reviewer who wanted to rule."""
    if row.removed:
        return "it was removed meanwhile"
    if row.state == APPROVED_STATE:
        return "it was approved meanwhile"
    if row.state == REJECTED_STATE:
        return f"it was rejected meanwhile (status {row.status!r})"
    return f"it is no longer pending (its status is now {row.status!r})"
