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

from moderation.site.status import python_type
from moderation.site.table import CommentsTable, read_comment, text_hash

APPROVED_STATE, PENDING_STATE, REJECTED_STATE, OTHER_STATE = (
    "approved",
    "pending",
    "rejected",
    "other",
)


@dataclass(frozen=True, slots=True)
class SiteRow:
    """A comment as the site holds it now."""

    key: str
    body: str
    state: str

    @property
    def text_hash(self) -> str:
        return text_hash(self.body)


class SiteStates:
    """Looks up comments by the keys the tool stored and names their state."""

    def __init__(self, comments: CommentsTable) -> None:
        self.comments = comments
        # Coerced to the status column's type, and checked against it, by CommentsTable.
        self.rejected_values = frozenset(comments.rejected_values)
        self._id_type = python_type(comments.id)

    def state_of(self, status: Any, removed: Any) -> str:
        if removed:
            return REJECTED_STATE
        if status is None:
            return OTHER_STATE
        if status == self.comments.approved_value:
            return APPROVED_STATE
        if status == self.comments.pending_value:
            return PENDING_STATE
        if status in self.rejected_values:
            return REJECTED_STATE
        return OTHER_STATE

    def site_id(self, key: str) -> Any:
        """The site's id value for a stored key ('42' -> 42 for an INTEGER key), or None."""
        if self._id_type is int:
            try:
                return int(key)
            except ValueError:
                return None
        return key

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
            removed = row[3] if c.removed is not None else False
            # Read as the batch reads it, so the text hash compares with the decision's.
            comment = read_comment(row[0], row[1])
            found[comment.key] = SiteRow(comment.key, comment.body, self.state_of(row[2], removed))
        return found
